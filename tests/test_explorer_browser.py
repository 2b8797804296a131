"""The explorer page in a real browser: headless Chromium driven by Selenium, from file:// URLs.

Skips, saying why, where selenium, chromium, chromedriver or graphviz's dot
is missing or the browser cannot start (scripts/setup.sh installs them).
"""
import re
import shutil

import pytest

import tinygrad_rnn as tr
from tinygrad_rnn import nn
from test_explorer import _chain as recorded_chain

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install -e .[test])")
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
CHROMEDRIVER = shutil.which("chromedriver")


@pytest.fixture(scope="module")
def driver():
    if shutil.which("dot") is None:
        pytest.skip("graphviz's dot is not installed")
    if CHROMIUM is None or CHROMEDRIVER is None:
        pytest.skip("chromium and chromium-driver are not installed (Debian: apt-get install chromium chromium-driver)")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,900"):
        options.add_argument(arg)
    options.binary_location = CHROMIUM
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    try:
        browser = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    except Exception as exc:  # any failure to start the browser is a reason to skip, given with it
        pytest.skip(f"the browser cannot start: {' '.join(str(exc).split())[:300]}")
    yield browser
    browser.quit()


def _chain():
    """test_explorer's chain h1 = tanh(W x), h2 = tanh(W h1), L = sum(h2), backpropagated with its order recorded."""
    W, _, _, _, loss = recorded_chain()
    with tr.viz.record_backward() as record:
        loss.backward()
    return W, loss, record


def _rnn(steps=5):
    tr.manual_seed(1)
    cell = nn.RNNCell(2, 3)
    x = tr.randn(2, steps, 2)
    with tr.retain_grads():
        h = tr.zeros(2, 3)
        for t in range(steps):
            h = cell(x[:, t], h)
        loss = (h * h).sum()
    with tr.viz.record_backward() as record:
        loss.backward()
    return cell, loss, record


def _open(driver, tmp_path, explorer, name="graph.html"):
    path = explorer.save(tmp_path / name)
    driver.get(path.resolve().as_uri())
    driver.get_log("browser")  # (drained: each test reads only its own messages)
    driver.refresh()
    return path


def _errors(driver):
    return [entry for entry in driver.get_log("browser") if entry["level"] in ("SEVERE", "ERROR")]


def _visible_nodes(driver):
    return [g for g in driver.find_elements(By.CSS_SELECTOR, ".tgx-view g.node") if g.is_displayed()]


def _title(driver, g):
    return driver.execute_script("return arguments[0].querySelector('title').textContent", g)


def _lit_titles(driver, titles):
    lit = (driver.find_element(By.TAG_NAME, "body").get_attribute("data-lit") or "").split()
    return [titles[i] for i in lit]


def test_page_loads_without_console_errors_and_loads_nothing(driver, tmp_path):
    W, loss, record = _chain()
    _open(driver, tmp_path, tr.viz.explore(loss, params={"W": W}, record=record))
    assert _errors(driver) == []
    assert driver.execute_script("return performance.getEntriesByType('resource').length") == 0
    assert driver.find_element(By.ID, "tgx-steplabel").text == "step 0 / 5: before backward"


def test_shows_as_many_nodes_as_the_dot(driver, tmp_path):
    cell, loss, record = _rnn()
    _open(driver, tmp_path, tr.viz.explore(loss, model=cell, record=record))
    source = tr.viz.draw_graph(loss, model=cell).source
    statements = re.findall(r"^\t+([A-Za-z_]\w*) \[", source, re.M)
    drawn = [s for s in statements if s not in ("graph", "node", "edge")]
    assert len(_visible_nodes(driver)) == len(drawn) > 10


def test_clicking_a_node_shows_its_shape(driver, tmp_path):
    W, loss, record = _chain()
    _open(driver, tmp_path, tr.viz.explore(loss, params={"<b>W</b>": W}, record=record))
    target = next(g for g in _visible_nodes(driver) if "<b>W</b>" in g.text)
    target.click()
    panel = driver.find_element(By.ID, "tgx-inspect")
    assert panel.find_element(By.TAG_NAME, "h3").text == "<b>W</b>"  # a name is shown as text
    assert driver.find_element(By.CSS_SELECTOR, "#tgx-fields .tgx-shape").text == "[3,3]"
    assert driver.find_element(By.CSS_SELECTOR, "#tgx-fields .tgx-dtype").text == "float32"
    assert "min" in panel.text and "norm" in panel.text
    assert _errors(driver) == []


def test_backward_steps_light_the_expected_tensors_in_order(driver, tmp_path):
    W, loss, record = _chain()
    _open(driver, tmp_path, tr.viz.explore(loss, params={"W": W}, record=record))
    titles = {_title(driver, g): g.text.split("\n")[0] for g in _visible_nodes(driver)}
    expected = [  # Sum, Tanh (h2), MatMul (sends to W and h1), Tanh (h1), MatMul (W again)
        ("Sum", {"L", "h2"}), ("Tanh", {"L", "h2"}), ("MatMul", {"L", "h2", "W", "h1"}),
        ("Tanh", {"L", "h2", "W", "h1"}), ("MatMul", {"L", "h2", "W", "h1"}),
    ]
    assert _lit_titles(driver, titles) == []
    next_button = driver.find_element(By.ID, "tgx-next")
    for k, (op, lit) in enumerate(expected, start=1):
        next_button.click()
        assert driver.find_element(By.ID, "tgx-steplabel").text == f"step {k} / 5: {op}.backward"
        assert set(_lit_titles(driver, titles)) == lit
        current = driver.find_elements(By.CSS_SELECTOR, "g.node.tgx-current")
        assert [c.text.split("\n")[0] for c in current] == [op]
    # the arrow keys and the slider drive the same stepper
    driver.find_element(By.TAG_NAME, "body").send_keys(Keys.ARROW_LEFT, Keys.ARROW_LEFT, Keys.ARROW_LEFT)
    assert driver.find_element(By.ID, "tgx-steplabel").text == "step 2 / 5: Tanh.backward"
    assert set(_lit_titles(driver, titles)) == {"L", "h2"}
    driver.execute_script("var s = document.getElementById('tgx-slider'); s.value = 0;"
                          "s.dispatchEvent(new Event('input'));")
    assert _lit_titles(driver, titles) == []
    assert _errors(driver) == []


def test_chart_follows_the_stepper(driver, tmp_path):
    cell, loss, record = _rnn(steps=5)
    _open(driver, tmp_path, tr.viz.explore(loss, model=cell, record=record))
    counts = []
    for _ in range(len(record.steps) + 1):
        counts.append(len(driver.find_elements(By.CSS_SELECTOR, "#tgx-chart .tgx-point")))
        driver.find_element(By.ID, "tgx-next").click()
    assert counts[0] == 0 and counts[-1] == 5  # h_4 back to h_0, one point per step as the gradient arrives
    assert counts == sorted(counts)


def test_folded_switch_changes_the_node_count(driver, tmp_path):
    cell, loss, record = _rnn()
    _open(driver, tmp_path, tr.viz.explore(loss, model=cell, record=record))
    unrolled = len(_visible_nodes(driver))
    from selenium.webdriver.support.ui import Select

    Select(driver.find_element(By.ID, "tgx-mode")).select_by_value("folded")
    folded = len(_visible_nodes(driver))
    assert 0 < folded < unrolled
    Select(driver.find_element(By.ID, "tgx-mode")).select_by_value("unrolled")
    assert len(_visible_nodes(driver)) == unrolled
    assert _errors(driver) == []


def test_without_a_record_the_page_says_so_instead_of_a_stepper(driver, tmp_path):
    cell, loss, _ = _rnn()
    _open(driver, tmp_path, tr.viz.explore(loss, model=cell))
    assert not driver.find_element(By.ID, "tgx-stepper").is_displayed()
    assert "No backward pass was recorded" in driver.find_element(By.ID, "tgx-note").text
    assert _errors(driver) == []


def test_the_jupyter_view_runs_in_its_frame(driver, tmp_path):
    W, loss, record = _chain()
    explorer = tr.viz.explore(loss, params={"W": W}, record=record)
    notebook = tmp_path / "notebook.html"
    notebook.write_text("<!DOCTYPE html><html><body><div id='cell'>" + explorer._repr_html_() + "</div></body></html>",
                        encoding="utf-8")
    driver.get(notebook.resolve().as_uri())
    driver.switch_to.frame(driver.find_element(By.TAG_NAME, "iframe"))
    try:
        assert len(_visible_nodes(driver)) > 5
        driver.find_element(By.ID, "tgx-next").click()
        assert driver.find_element(By.ID, "tgx-steplabel").text == "step 1 / 5: Sum.backward"
    finally:
        driver.switch_to.default_content()
    assert _errors(driver) == []


def _bars_descent(driver, element):
    """How far "‖" and "ll" reach below the baseline (in em) in ``element``'s font: a font with the norm
    glyph draws it as a tall double bar that does; Helvetica's stand-ins draw two bars like "ll" that do not."""
    return driver.execute_script("""
        var style = getComputedStyle(arguments[0]), c = document.createElement('canvas').getContext('2d');
        c.font = '100px ' + style.fontFamily;
        return [c.measureText('\\u2016').actualBoundingBoxDescent / 100, c.measureText('ll').actualBoundingBoxDescent / 100,
                style.fontFamily];""", element)


def test_norm_bars_are_drawn_as_a_norm(driver, tmp_path):
    cell, loss, record = _rnn()
    _open(driver, tmp_path, tr.viz.explore(loss, model=cell, record=record))
    for _ in range(len(record.steps)):
        driver.find_element(By.ID, "tgx-next").click()
    next(g for g in _visible_nodes(driver) if g.text.split("\n")[0] == "h").click()
    title = driver.find_element(By.ID, "tgx-charttitle")  # (the chart is redrawn on each click)
    assert driver.execute_script("return arguments[0].textContent", title) == "‖∂L/∂h_t‖ against t (log)"
    label = driver.find_element(By.CSS_SELECTOR, "#tgx-fields td .tgx-bars")
    assert driver.execute_script("return arguments[0].parentNode.textContent", label) == "‖grad‖ (recorded)"
    marks = title.find_elements(By.CSS_SELECTOR, ".tgx-bars") + [label]
    assert len(marks) == 3
    for bars in marks:
        below, letters, font = _bars_descent(driver, bars)
        assert below > 0.1 and letters < 0.02, f"‖ in {font} falls back to a font that draws it as ll"
    assert _errors(driver) == []


def test_intermediate_values_and_gates_in_the_panel(driver, tmp_path):
    tr.manual_seed(3)
    lstm = nn.LSTM(2, 3)
    with tr.viz.record_backward() as record:
        out, _ = lstm(tr.randn(3, 1, 2))
        loss = out.sum()
        loss.backward()
    _open(driver, tmp_path, tr.viz.explore(loss, model=lstm, record=record, expand_fused=True))
    value = driver.find_element(By.ID, "tgx-inspect")
    next(g for g in _visible_nodes(driver) if g.text.split("\n")[0] == "h").click()
    rows = {r.find_elements(By.TAG_NAME, "td")[0].text: r.find_elements(By.TAG_NAME, "td")[1].text
            for r in value.find_elements(By.CSS_SELECTOR, "#tgx-fields tr")}
    assert rows["value"].startswith("min ") and "norm" in rows["value"]
    gate = next(g for g in _visible_nodes(driver) if g.text.startswith("f = σ"))
    gate.click()
    assert value.find_element(By.TAG_NAME, "h3").text.startswith("f = σ")
    assert "part of the fused LSTMSequence op" in value.find_element(By.CLASS_NAME, "tgx-about").text
    assert _errors(driver) == []
