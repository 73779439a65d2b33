#!/usr/bin/python3
"""The gallery in a real browser: Debian's headless Chromium through Selenium.

    gallery_browser.py BASE_URL OUT_DIR MAX_FILE_SIZE

Signs in, uploads two files in one request (one past the 64 KiB memory
threshold, so it is spooled), finds both listed, downloads one through the
browser and compares the bytes, uploads a file over MAX_FILE_SIZE and gets
the HTML 413 page, is refused (HTML 403) when a delete form's CSRF token is
taken out, deletes a file, watches the status chart redraw, signs out.
Every page is checked for browser console errors; screenshots of the main
pages go to OUT_DIR, and the raw HTML of each page to OUT_DIR/html/ for the
validity check that runs after this script (gallery_browser.sh).
"""
import hashlib
import json
import os
import sys
import time
import urllib.request

from selenium import webdriver
from selenium.common.exceptions import TimeoutException, WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

base, out, max_file_size = sys.argv[1].rstrip("/"), sys.argv[2], int(sys.argv[3])
downloads = os.path.join(out, "downloads")
files = os.path.join(out, "files")
html = os.path.join(out, "html")
for directory in (downloads, files, html):
    os.makedirs(directory, exist_ok=True)


driver = None


def fail(message):
    print("gallery_browser: FAIL: " + message, file=sys.stderr)
    try:
        driver.save_screenshot(os.path.join(out, "failure.png"))
        with open(os.path.join(out, "failure.html"), "w") as f:
            f.write(driver.page_source)
        print("  at " + driver.current_url + ", screenshot failure.png", file=sys.stderr)
    except Exception:  # the browser itself may be what failed
        pass
    sys.exit(1)


def step(message):
    print("gallery_browser: " + message, flush=True)


def write_file(name, size):
    path = os.path.join(files, name)
    with open(path, "wb") as f:
        f.write(os.urandom(size))
    return path


small = write_file("notes <img src=x onerror=alert(1)> &amp; 'quotes'.bin", 12345)
large = write_file("large photo.raw", 300 * 1024 + 17)  # past the 64 KiB spool threshold
too_big = write_file("too big.raw", max_file_size + 1)

options = webdriver.ChromeOptions()
for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                 "--window-size=1100,760", "--disable-extensions", "--no-first-run",
                 "--password-store=basic", "--user-data-dir=" + os.path.join(out, "profile")):
    options.add_argument(argument)
options.binary_location = "/usr/bin/chromium"
options.add_experimental_option("prefs", {
    "download.default_directory": downloads,
    "download.prompt_for_download": False,
    "safebrowsing.enabled": False,
})
options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
service = webdriver.ChromeService(executable_path="/usr/bin/chromedriver",
                                  log_output=os.path.join(out, "chromedriver.log")) \
    if hasattr(webdriver, "ChromeService") else \
    webdriver.chrome.service.Service("/usr/bin/chromedriver",
                                     log_path=os.path.join(out, "chromedriver.log"))
driver = webdriver.Chrome(service=service, options=options)
driver.set_page_load_timeout(30)
driver.execute_cdp_cmd("Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": downloads})
wait = WebDriverWait(driver, 20)


def console(expected=()):
    """The console entries since the last call; fail on an error unless it is
    the network error of a status the step expects (a 403 or 413 page)."""
    entries = driver.get_log("browser")
    for entry in entries:
        if entry["level"] not in ("SEVERE",):
            continue
        message = entry["message"]
        if any("status of %d" % status in message for status in expected):
            continue
        fail("console error on %s: %s" % (driver.current_url, message))
    return entries


def save_html(name):
    """The page's HTML as the server sent it (the session cookie of the
    browser on a plain request), for tidy."""
    cookies = "; ".join("%s=%s" % (c["name"], c["value"]) for c in driver.get_cookies())
    request = urllib.request.Request(driver.current_url, headers={"Cookie": cookies})
    try:
        body = urllib.request.urlopen(request, timeout=10).read()
    except urllib.error.HTTPError as error:  # the error pages are pages too
        body = error.read()
    with open(os.path.join(html, name + ".html"), "wb") as f:
        f.write(body)


def shot(name):
    driver.save_screenshot(os.path.join(out, name + ".png"))


def heading():
    return driver.find_element(By.TAG_NAME, "h1").text


def listed_names():
    """The file names of the listing (None while the page is being replaced)."""
    try:
        return driver.execute_script(
            "return [...document.querySelectorAll('tbody td:first-child a')]"
            ".map(a => a.textContent)")
    except WebDriverException:
        return None


def sign_in(user, password):
    driver.get(base + "/signin")
    driver.find_element(By.NAME, "user").send_keys(user)
    driver.find_element(By.NAME, "password").send_keys(password)
    driver.find_element(By.CSS_SELECTOR, "form.signin button[type=submit]").click()


try:
    # ---- sign in (a wrong password first)
    driver.get(base + "/")
    if not driver.current_url.endswith("/signin"):
        fail("/ without a session does not send the browser to /signin")
    shot("signin")
    save_html("signin")
    console()
    sign_in("alice", "not-her-password")
    wait.until(expected_conditions.presence_of_element_located((By.CSS_SELECTOR, "p.error")))
    console(expected=(401,))
    sign_in("alice", "alice-gallery")
    wait.until(expected_conditions.text_to_be_present_in_element((By.TAG_NAME, "h1"), "Your files"))
    session = driver.get_cookie("gallery_session")
    if not session or not session.get("httpOnly") or session.get("sameSite") != "Lax":
        fail("the session cookie is not HttpOnly and SameSite=Lax: %r" % session)
    if driver.execute_script("return document.cookie").find("gallery_session") >= 0:
        fail("the session cookie is readable from JavaScript")
    step("signed in as alice")
    console()

    # ---- upload two files in one request, with the progress bar
    driver.find_element(By.NAME, "file").send_keys(small + "\n" + large)
    # record what the page's script sets the progress bar to (sessionStorage:
    # the page is replaced when the upload ends)
    driver.execute_script("""
        const bar = document.getElementById('progress');
        const value = Object.getOwnPropertyDescriptor(HTMLProgressElement.prototype, 'value');
        Object.defineProperty(bar, 'value', {
            get() { return value.get.call(this); },
            set(v) {
                sessionStorage.setItem('progress', (sessionStorage.getItem('progress') || '') + v + ' ');
                value.set.call(this, v);
            }});
    """)
    driver.find_element(By.CSS_SELECTOR, "#upload button[type=submit]").click()
    wait.until(lambda d: len(listed_names() or ()) == 2)
    names = sorted(listed_names())
    if names != sorted([os.path.basename(small), os.path.basename(large)]):
        fail("the listing after the upload: %r" % names)
    progress = driver.execute_script("return sessionStorage.getItem('progress')") or ""
    if not progress.split() or float(progress.split()[-1]) != 100:
        fail("the progress bar did not reach 100: %r" % progress)
    step("uploaded two files (progress %s); listed: %r" % (progress.strip(), names))
    # the listing escapes the file name: it shows as text, not as markup
    if driver.find_elements(By.CSS_SELECTOR, "tbody img"):
        fail("a file name was rendered as markup")
    shot("files")
    save_html("files")
    console()

    # ---- download the large one through the browser and compare the bytes
    link = [a for a in driver.find_elements(By.CSS_SELECTOR, "tbody td:first-child a")
            if a.text == os.path.basename(large)][0]
    link.click()
    target = os.path.join(downloads, os.path.basename(large))
    deadline = time.time() + 20
    while time.time() < deadline and not (os.path.exists(target) and
                                          os.path.getsize(target) == os.path.getsize(large)):
        time.sleep(0.1)
    if not os.path.exists(target):
        fail("the download did not arrive: %r" % os.listdir(downloads))
    with open(target, "rb") as got, open(large, "rb") as sent:
        if hashlib.sha256(got.read()).digest() != hashlib.sha256(sent.read()).digest():
            fail("the downloaded bytes differ from the uploaded ones")
    step("downloaded %s, %d bytes, identical" % (os.path.basename(large), os.path.getsize(target)))
    console()

    # ---- an upload over the limit: the HTML 413 page
    driver.find_element(By.NAME, "file").send_keys(too_big)
    driver.find_element(By.CSS_SELECTOR, "#upload button[type=submit]").click()
    wait.until(expected_conditions.text_to_be_present_in_element((By.TAG_NAME, "h1"), "413"))
    if "larger than this gallery takes" not in driver.find_element(By.CSS_SELECTOR, "p.error").text:
        fail("the 413 page does not say what went wrong")
    shot("too-large")
    console(expected=(413,))
    step("an upload of %d bytes got the 413 page" % os.path.getsize(too_big))
    driver.get(base + "/")
    if len(listed_names()) != 2:
        fail("the refused upload changed the listing: %r" % listed_names())

    # ---- a delete without its CSRF token is refused
    driver.execute_script(
        "document.querySelector('tbody form input[name=csrf]').remove()")
    driver.find_element(By.CSS_SELECTOR, "tbody form button[type=submit]").click()
    wait.until(expected_conditions.text_to_be_present_in_element((By.TAG_NAME, "h1"), "403"))
    save_html("forbidden")
    shot("forbidden")
    console(expected=(403,))
    driver.get(base + "/")
    if len(listed_names()) != 2:
        fail("a delete without its CSRF token deleted a file")
    step("a delete without the CSRF token got the 403 page; nothing deleted")

    # ---- delete one, with its token
    first = listed_names()[0]
    driver.find_element(By.CSS_SELECTOR, "tbody form button[type=submit]").click()
    wait.until(lambda d: len(listed_names() or ()) == 1)
    if listed_names()[0] == first:
        fail("the delete removed the other file")
    step("deleted %s" % first)
    console()

    # ---- a page that does not exist
    driver.get(base + "/no/such/page")
    if "404" not in heading():
        fail("an unknown page: %r" % heading())
    save_html("not-found")
    console(expected=(404,))

    # ---- the status page redraws its chart from /status.json
    driver.get(base + "/status")
    first_count = int(driver.find_element(By.ID, "requests").text or "0")
    wait.until(lambda d: int(d.find_element(By.ID, "requests").text or "0") > first_count)
    # the line (#4a8) appears once two refreshes gave a rate: count its pixels
    line_pixels = """
        const c = document.getElementById('chart');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0;
        for (let i = 0; i < d.length; i += 4)
            if (d[i + 3] && d[i + 1] > d[i] + 60 && d[i + 1] > d[i + 2]) n++;
        return n;"""
    wait.until(lambda d: d.execute_script(line_pixels) > 0)
    drawn = driver.execute_script(line_pixels)
    figures = json.loads(urllib.request.urlopen(base + "/status.json", timeout=10).read())
    for key in ("requests", "connections", "workers", "threads", "uptime", "pid"):
        if key not in figures:
            fail("/status.json has no %s: %r" % (key, figures))
    # the server's figures (csgi_server_stats_get), every worker's: gallery.ini has 2
    if figures.get("server") is not True or figures["workers"] != 2:
        fail("/status.json does not give the server's figures: %r" % figures)
    if figures["connections"] < 1 or figures["requests"] < first_count:
        fail("/status.json: %r" % figures)
    if driver.find_element(By.ID, "workers").text != "2":
        fail("the status page shows %r workers" % driver.find_element(By.ID, "workers").text)
    shot("status")
    save_html("status")
    console()
    step("the status page counts and draws (%d pixels)" % drawn)

    # ---- sign out: the session is gone
    driver.get(base + "/")
    driver.find_element(By.CSS_SELECTOR, "form.inline button[type=submit]").click()
    wait.until(lambda d: d.current_url.endswith("/signin"))
    driver.get(base + "/")
    if not driver.current_url.endswith("/signin"):
        fail("after signing out, / still shows the files")
    console()
    step("signed out")
except TimeoutException as error:
    fail("timed out waiting: %s" % (error.msg or "a condition"))
except WebDriverException as error:
    fail("the browser: %s" % (error.msg or error))
finally:
    driver.quit()

print("gallery_browser: ok, screenshots in " + out)
