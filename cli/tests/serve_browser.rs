//! `serve`'s web page in a real browser: Debian's chromium, headless, loads the page with a
//! prompt in its address (`?prompt=…&auto=1`), which streams samples into the page; a prompt
//! outside the vocabulary shows the server's error. Skipped, saying why, where chromium is not
//! installed (`.ci/run` installs it). With `SERVE_PAGE_SCREENSHOT=FILE` it also saves a
//! screenshot of the page after a sample.

mod common;
mod serve_support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use serve_support::*;

/// The browser's command, if one is installed.
fn chromium() -> Option<&'static str> {
    ["chromium", "chromium-browser"].into_iter().find(|name| {
        Command::new(name)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
}

/// Runs the browser headless on `url` with `action` (`--dump-dom`, `--screenshot=FILE`);
/// returns what it printed.
fn browse(browser: &str, url: &str, action: &str) -> String {
    let profile = tempfile::tempdir().unwrap();
    let child = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--window-size=1280,860",
            "--virtual-time-budget=15000",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(action)
        .arg(url)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the browser");
    let (out, _) = wait_at_most(child, Duration::from_secs(120));
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out)
}

/// The text of the element that follows `marker` up to the next tag.
fn text_after<'a>(dom: &'a str, marker: &str) -> &'a str {
    let start = dom.find(marker).unwrap_or_else(|| panic!("{marker} in {dom}")) + marker.len();
    &dom[start..start + dom[start..].find('<').unwrap()]
}

#[test]
fn the_page_streams_samples_and_shows_errors() {
    let Some(browser) = chromium() else {
        println!("skipped: chromium is not installed (Debian: apt-get install chromium)");
        return;
    };
    let dir = trained_model();
    let server = Server::start(dir.path(), &[]);
    let page = format!("http://{}/?prompt=the%20&auto=1&n=2&length=60&seed=3", server.addr);
    let dom = browse(browser, &page, "--dump-dom");
    // Both samples streamed in whole, each after the prompt, and the model's facts are shown.
    assert!(dom.contains("done: 120 characters"), "{dom}");
    for i in 0..2 {
        let sample = &dom[dom.find(&format!("id=\"sample-{i}\"")).unwrap_or_else(|| panic!("sample {i}: {dom}"))..];
        let text = text_after(sample, "<span class=\"text\">");
        let unescaped = text.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"").replace("&amp;", "&");
        assert_eq!(unescaped.chars().count(), 60, "sample {i}: {text:?}");
    }
    assert!(text_after(&dom, "<div id=\"facts\">").contains("parameters"), "{dom}");

    let bad = format!("http://{}/?prompt=%C3%BF%E2%82%AC&auto=1", server.addr);
    let dom = browse(browser, &bad, "--dump-dom");
    let error = text_after(&dom, "<div id=\"error\" data-shown=\"1\">");
    assert!(error.starts_with("Error: ") && error.contains("'ÿ', '€'"), "{error}");

    if let Some(file) = std::env::var_os("SERVE_PAGE_SCREENSHOT") {
        let shot = format!("http://{}/?prompt=ROMEO:&auto=1&n=3&length=400&temperature=0.8", server.addr);
        browse(browser, &shot, &format!("--screenshot={}", Path::new(&file).display()));
        assert!(Path::new(&file).is_file());
    }
}
