"""The operations console in a real headless Chromium (selenium), against a running service.

Usage: browser.py BASE_URL OUT_DIR [--token ADMIN_TOKEN] [--screenshot PATH ...] [--quick]

With a token, the page must ask for it (once) and then show everything; without one it must
not ask. The full run creates orders through the API (one that completes, one whose payment
is declined, one whose payment never answers), watches them reach their statuses in the
live list, uses the filters, opens each and reads the marks on the drawn state machine, and
cancels the waiting one from the page (accepting the confirm dialog) until it is CANCELLED.
`--quick` only loads the page and sees one new order appear. Any SEVERE entry in the
browser's log fails the run. Prints one JSON line with what it saw; exits non-zero on failure.
"""

import argparse
import json
import sys
import urllib.request

from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select, WebDriverWait

HAPPY = ["ReserveInventory", "RequestPayment", "SendNotification", "PrepareShipment",
         "MarkShipped", "VoucherEligible", "IssueVoucher", "MarkCompleted", "Completed"]


class Api:
    def __init__(self, base, token):
        self.base, self.token = base, token

    def call(self, method, path, body=None):
        req = urllib.request.Request(self.base + path, method=method)
        if self.token:
            req.add_header("Authorization", f"Bearer {self.token}")
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            req.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(req, data, timeout=10) as res:
            return json.loads(res.read() or b"null")

    def order(self, customer, product, price, method):
        body = {"customerId": customer, "paymentMethod": method,
                "items": [{"productId": product, "quantity": 1, "price": price}]}
        return self.call("POST", "/orders", body)["orderId"]


def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for arg in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                "--window-size=1680,1500", "--disable-gpu", "--no-first-run"]:
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)


def wait(driver, what, condition, timeout=30):
    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.1,
                             ignored_exceptions=(StaleElementReferenceException,)).until(condition)
    except TimeoutException:
        error = driver.find_element(By.ID, "error")
        shown = error.text if error.is_displayed() else ""
        raise AssertionError(f"timed out waiting for {what} (page error: {shown!r})") from None


def row_status(driver, order):
    rows = driver.find_elements(By.CSS_SELECTOR, f'#orders tr[data-order-id="{order}"] .status-cell')
    return rows[0].text if rows else None


def marks(driver):
    """Each drawn state's mark classes: {state: set(classes)}."""
    found = {}
    for g in driver.find_elements(By.CSS_SELECTOR, "#graph g.state"):
        found[g.get_attribute("data-state")] = set(g.get_attribute("class").split())
    return found


def with_mark(driver, mark):
    return {s for s, c in marks(driver).items() if mark in c}


def click_row(driver, order):
    # The live list is redrawn every second: a row found just before a redraw is stale.
    try:
        driver.find_element(By.CSS_SELECTOR, f'#orders tr[data-order-id="{order}"]').click()
        return True
    except StaleElementReferenceException:
        return False


def open_order(driver, order):
    wait(driver, f"a click on {order}", lambda d: click_row(d, order), 5)
    wait(driver, f"the detail of {order}",
         lambda d: d.find_element(By.ID, "d-id").text == order and d.find_elements(By.CSS_SELECTOR, "#graph g.state"))


def start_page(driver, base, token):
    driver.get(base + "/console")
    form = driver.find_element(By.ID, "token-form")
    if token:
        wait(driver, "the token prompt", lambda d: form.is_displayed())
        assert not driver.find_element(By.ID, "main").is_displayed(), "data shown before a token"
        driver.find_element(By.ID, "token").send_keys(token)
        form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait(driver, "the orders panel", lambda d: d.find_element(By.ID, "main").is_displayed()
         and d.find_elements(By.CSS_SELECTOR, "#counts .count"))
    assert not form.is_displayed(), "the token prompt is still shown"


def full_run(driver, api, seen):
    done = api.order("console-alice", "laptop", 1299.99, "pm_card_visa")
    declined = api.order("console-bob", "mouse", 19.99, "pm_card_chargeDeclined")
    waiting = api.order("console-carol", "keyboard", 49.99, "pm_card_noAnswer")
    seen["orders"] = {"completed": done, "declined": declined, "cancelled": waiting}

    for order, status in [(done, "COMPLETED"), (declined, "FAILED"), (waiting, "AWAITING_PAYMENT")]:
        wait(driver, f"{order} listed as {status}", lambda d: row_status(d, order) == status, 60)

    # Newest first: the last created is the first row.
    first = lambda d: d.find_element(By.CSS_SELECTOR, "#orders tbody tr").get_attribute("data-order-id")
    wait(driver, "the newest order first", lambda d: first(d) == waiting, 5)

    Select(driver.find_element(By.ID, "status-filter")).select_by_value("FAILED")
    wait(driver, "only FAILED orders", lambda d: row_status(d, done) is None and row_status(d, declined) == "FAILED")
    failed = lambda d: d.find_element(By.CSS_SELECTOR, '#counts .count[data-status="FAILED"] strong').text
    wait(driver, "a FAILED order counted", lambda d: int(failed(d)) >= 1, 5)
    Select(driver.find_element(By.ID, "status-filter")).select_by_value("")
    customer = driver.find_element(By.ID, "customer-filter")
    customer.send_keys("console-alice")
    wait(driver, "only console-alice's orders", lambda d: row_status(d, declined) is None and row_status(d, done) == "COMPLETED")
    customer.clear()
    customer.send_keys(" ")
    wait(driver, "every order again", lambda d: row_status(d, waiting) is not None)

    open_order(driver, done)
    wait(driver, "the completed path marked", lambda d: set(HAPPY) <= with_mark(d, "visited"))
    visited = with_mark(driver, "visited")
    assert "BeginCompensation" not in visited, visited
    assert not with_mark(driver, "current") and not with_mark(driver, "failed"), marks(driver)
    facts = driver.find_element(By.ID, "d-facts").text
    for fact in ["Payment", "Shipment", "Voucher issued"]:
        assert fact in facts, f"{fact} not shown: {facts}"
    wait(driver, "the execution history", lambda d: len(d.find_elements(By.CSS_SELECTOR, "#history tbody tr")) > 5)
    steps = len(driver.find_elements(By.CSS_SELECTOR, "#steps tbody tr"))
    seen["completed"] = {"visited": sorted(visited), "steps": steps}
    for path in seen["screenshots"]:
        driver.save_screenshot(path)

    open_order(driver, declined)
    wait(driver, "the compensation path marked",
         lambda d: {"BeginCompensation", "MarkFailed", "Compensated"} <= with_mark(d, "visited"))
    errored = with_mark(driver, "errored")
    assert "RequestPayment" in errored, marks(driver)
    assert "Completed" not in with_mark(driver, "visited")
    seen["declined"] = {"visited": sorted(with_mark(driver, "visited")), "errored": sorted(errored)}

    open_order(driver, waiting)
    wait(driver, "the waiting payment marked current", lambda d: with_mark(d, "current") == {"RequestPayment"})
    seen["waiting"] = {"current": sorted(with_mark(driver, "current")), "waiting": sorted(with_mark(driver, "waiting"))}
    cancel = driver.find_element(By.ID, "cancel")
    wait(driver, "the cancel button", lambda d: cancel.is_displayed())
    cancel.click()
    alert = wait(driver, "the confirmation", EC.alert_is_present(), 5)
    seen["confirm"] = alert.text
    alert.accept()
    wait(driver, f"{waiting} listed as CANCELLED", lambda d: row_status(d, waiting) == "CANCELLED", 60)
    wait(driver, "the cancellation path marked", lambda d: {"MarkCancelled", "Compensated"} <= with_mark(d, "visited"))
    assert api.call("GET", f"/orders/{waiting}")["status"] == "CANCELLED"
    assert not driver.find_element(By.ID, "cancel").is_displayed(), "cancel offered on a CANCELLED order"
    wait(driver, "the attention lists", lambda d: d.find_elements(By.CSS_SELECTOR, "#parked tbody tr"))


def quick_run(driver, api, seen):
    order = api.order("console-quick", "mouse", 19.99, "pm_card_visa")
    wait(driver, f"{order} listed", lambda d: row_status(d, order) is not None, 30)
    seen["orders"] = {"listed": order}
    for path in seen["screenshots"]:
        driver.save_screenshot(path)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("base")
    p.add_argument("--token")
    p.add_argument("--screenshot", action="append", default=[])
    p.add_argument("--quick", action="store_true")
    args = p.parse_args()
    seen = {"screenshots": args.screenshot}
    driver = browser()
    try:
        api = Api(args.base, args.token)
        start_page(driver, args.base, args.token)
        (quick_run if args.quick else full_run)(driver, api, seen)
        log = driver.get_log("browser")
        severe = [e for e in log if e.get("level") == "SEVERE"]
        seen["browser_log"] = len(log)
        assert not severe, f"SEVERE entries in the browser log: {severe}"
    except Exception:
        # The state the failure left, in the output dir only (never over the docs' image).
        if args.screenshot:
            driver.save_screenshot(args.screenshot[0])
        print(json.dumps(seen), flush=True)
        raise
    finally:
        driver.quit()
    print(json.dumps(seen), flush=True)


if __name__ == "__main__":
    sys.exit(main())
