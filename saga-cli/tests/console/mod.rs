//! The web console (`saga-cli serve`, `saga-cli run DOMAIN --serve`): in a real headless
//! Chromium, and over plain HTTP.

mod browser;
mod served;

use browser::Browser;
use serde_json::Value;
use served::{Served, request};
use std::path::Path;

/// A finished imp-summoning run of 30 orders in `dir/imp.redb`: some compensated.
fn imp_run(dir: &Path) {
    let out = crate::saga_cli(&["run", "imp-summoning", "--db", "imp.redb", "--orders", "30"], dir);
    assert_eq!(out.status.code(), Some(0), "{}", crate::stderr(&out));
}

#[test]
fn in_a_browser_the_console_filters_to_compensated_processes_and_shows_one_with_its_steps_and_diagram() {
    let dir = tempfile::tempdir().unwrap();
    imp_run(dir.path());
    let served =
        Served::start(&["serve", "--db", "imp.redb", "--addr", "127.0.0.1:0"], dir.path(), "console");
    let Some(mut browser) = Browser::open("console-imp-summoning") else { return };
    browser.goto(&served.url("/"));
    browser.wait_for("document.querySelectorAll('#processes tbody tr').length > 0", "the processes");
    browser.eval("document.getElementById('status-filter').value = 'compensated'");
    browser.click("#apply-filters");
    browser.wait_for("location.search.includes('status=compensated')", "the filtered page");
    let statuses = browser
        .eval("[...document.querySelectorAll('#processes tbody td.status')].map(td => td.textContent)");
    let statuses: Vec<&str> = statuses.as_array().unwrap().iter().filter_map(Value::as_str).collect();
    assert!(!statuses.is_empty(), "no compensated process is listed");
    assert!(statuses.iter().all(|s| *s == "compensated"), "{statuses:?}");
    let counted = browser.eval("document.querySelector('#counts a.here b').textContent");
    assert_eq!(counted.as_str().unwrap(), statuses.len().to_string(), "the count of the status shown");

    browser.click("#processes tbody tr a");
    browser.wait_for("location.pathname.startsWith('/processes/summoning%2F')", "a process's page");
    browser.wait_for("document.getElementById('process-status') !== null", "its status");
    assert_eq!(browser.eval("document.getElementById('process-status').textContent"), "compensated");
    let steps = browser.eval("[...document.querySelectorAll('#steps tbody tr')].map(tr => [...tr.cells].slice(0, 2).map(c => c.textContent))");
    let steps: Vec<(String, String)> = steps
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s[0].as_str().unwrap().to_owned(), s[1].as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(steps.first().map(|s| s.0.as_str()), Some("collect-fee"), "{steps:?}");
    assert!(steps.iter().any(|(_, status)| status == "compensated"), "a step was undone: {steps:?}");
    assert!(steps.iter().any(|(_, status)| status == "failed"), "a step failed: {steps:?}");
    // The diagram is a picture in the page: the saga and the services it spoke to, the
    // failure marked.
    let participants = browser
        .eval("[...document.querySelectorAll('#diagram svg .participant text')].map(t => t.textContent)");
    let participants: Vec<&str> = participants.as_array().unwrap().iter().filter_map(Value::as_str).collect();
    assert_eq!(participants.first(), Some(&"summoning"), "{participants:?}");
    assert!(participants.contains(&"treasury"), "{participants:?}");
    assert!(browser.eval("document.querySelectorAll('#diagram svg .message').length").as_u64().unwrap() >= 4);
    assert_eq!(browser.eval("document.querySelectorAll('#diagram svg .note.failed').length"), 1);
    let drawn = browser.eval("document.querySelector('#diagram svg').getBoundingClientRect().height");
    assert!(drawn.as_f64().unwrap() > 100.0, "the diagram is drawn: {drawn}");
}

#[test]
fn in_a_browser_a_document_voided_from_its_page_is_seen_to_end_without_a_reload_and_a_failed_one_is_acknowledged()
 {
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "run",
        "document-voiding",
        "--db",
        "dv.redb",
        "--documents",
        "6",
        "--slow",
        "--serve",
        "127.0.0.1:0",
    ];
    let served = Served::start(&args, dir.path(), "console");
    let Some(mut browser) = Browser::open("console-document-voiding") else { return };
    browser.goto(&served.url("/documents"));
    browser.fill("#issue-document", "doc-web");
    browser.fill("#issue-customer", "customer-web");
    browser.click("#issue");
    browser.wait_for(
        "document.querySelector('tr[data-document=\"doc-web\"] button.void') !== null",
        "the issued document",
    );
    browser.click("tr[data-document=\"doc-web\"] button.void");
    assert!(browser.confirmed.iter().any(|m| m.contains("Void doc-web")), "{:?}", browser.confirmed);
    browser.wait_for("location.search.includes('voiding%20asked')", "the page after the request");
    // From here on the page is not loaded again: what it shows comes from the server's events.
    browser.eval("window.loadedOnce = true");
    let voiding = "document.querySelector('tr[data-document=\"doc-web\"] td.voiding .status')";
    // Reports take two seconds a marking (--slow): the page loaded before the voiding ended.
    let shown = browser.eval(&format!("{voiding} === null ? 'not yet' : {voiding}.textContent"));
    assert_ne!(shown, "completed", "the voiding had ended before its page loaded: no change was seen live");
    browser.wait_for(&format!("{voiding}.textContent === 'completed'"), "the voiding to complete");
    assert_eq!(browser.eval("window.loadedOnce === true"), true, "the page was not reloaded");
    assert_eq!(
        browser.eval("document.querySelector('tr[data-document=\"doc-web\"] td.billing').textContent"),
        "voided"
    );

    // A voiding of a document whose report was published fails, and waits for an operator.
    browser.wait_for("document.querySelector('button.acknowledge') !== null", "a failed voiding");
    let row = browser.eval("document.querySelector('button.acknowledge').closest('tr').dataset.document");
    browser.click("button.acknowledge");
    assert!(
        browser.confirmed.iter().any(|m| m.starts_with("Acknowledge the failed voiding")),
        "{:?}",
        browser.confirmed
    );
    browser.wait_for("location.pathname.startsWith('/processes/document-voiding%2F')", "the process's page");
    browser.wait_for(
        "document.getElementById('process-status').textContent === 'acknowledged'",
        "it to be acknowledged",
    );
    let said = browser.eval("document.getElementById('said').textContent");
    assert!(said.as_str().unwrap().contains("acknowledge applied"), "{said}");
    let class = browser.eval("document.getElementById('said').className");
    assert_eq!(class, "said", "an applied action is not shown as refused");
    drop(browser);
    let (code, out) = served.interrupt();
    assert_eq!(code, Some(0), "{out}");
    assert!(!out.contains("| NO "), "every invariant holds after {row}'s voiding was acknowledged: {out}");
}

#[test]
fn in_a_browser_the_online_shops_scenario_page_is_told_each_event_of_its_order() {
    let dir = tempfile::tempdir().unwrap();
    let args = ["run", "online-shop", "--db", "shop.redb", "--orders", "2", "--serve", "127.0.0.1:0"];
    let served = Served::start(&args, dir.path(), "console");
    let Some(mut browser) = Browser::open("console-online-shop") else { return };
    browser.goto(&served.url("/scenario/1"));
    browser.wait_for(
        "document.getElementById('scenario-status').dataset.ended === 'true'",
        "the purchase to end",
    );
    let status = browser.eval("document.getElementById('scenario-status').textContent");
    assert!(matches!(status.as_str(), Some("completed" | "compensated")), "{status}");
    let told = browser.eval("[...document.querySelectorAll('#notifications li')].map(li => li.textContent)");
    let told: Vec<&str> = told.as_array().unwrap().iter().filter_map(Value::as_str).collect();
    let said = |what: &str| told.iter().any(|n| n.contains(what));
    assert!(said("started (purchase)"), "{told:#?}");
    assert!(said("sent order.create to order") && said("sent payment.cash to payment"), "{told:#?}");
    if status == "completed" {
        assert!(said("sent delivery.dispatch to delivery"), "{told:#?}");
    }
    assert!(
        said(&format!("status running -> {}", status.as_str().unwrap())),
        "the end is told too: {told:#?}"
    );
    // Told as they happened, in order, each once.
    let started = told.iter().position(|n| n.contains("started (purchase)")).unwrap();
    assert_eq!(started, 0, "{told:#?}");
    assert_eq!(told.iter().filter(|n| n.contains("started (purchase)")).count(), 1, "{told:#?}");
}

/// `--limit`ed pages of `saga-cli list --json` with `args`, their ids in order.
fn listed(args: &[&str], dir: &Path) -> Vec<String> {
    let mut all = vec!["list", "--db", "imp.redb", "--json"];
    all.extend(args);
    let out = crate::saga_cli(&all, dir);
    assert_eq!(out.status.code(), Some(0), "{}", crate::stderr(&out));
    crate::json(&out).as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap().to_owned()).collect()
}

/// Every page of `/api/processes?{query}`, `limit` at a time, their ids in order.
fn paged(served: &Served, query: &str, limit: usize) -> Vec<String> {
    let mut ids = Vec::new();
    let mut after = String::new();
    loop {
        let page = served.get(&format!("/api/processes?limit={limit}&{query}{after}")).json();
        let rows = page["rows"].as_array().unwrap();
        assert!(rows.len() <= limit);
        ids.extend(rows.iter().map(|r| r["id"].as_str().unwrap().to_owned()));
        match page["next"].as_str() {
            Some(next) => after = format!("&after={next}"),
            None => return ids,
        }
    }
}

#[test]
fn the_consoles_pages_and_filters_agree_with_list() {
    let dir = tempfile::tempdir().unwrap();
    imp_run(dir.path());
    let served =
        Served::start(&["serve", "--db", "imp.redb", "--addr", "127.0.0.1:0"], dir.path(), "console");
    let everything = listed(&[], dir.path());
    assert_eq!(everything.len(), 30);
    assert_eq!(paged(&served, "", 7), everything);
    assert_eq!(paged(&served, "order=oldest", 4), listed(&["--oldest-first"], dir.path()));
    assert_eq!(paged(&served, "status=compensated", 1), listed(&["--status", "compensated"], dir.path()));
    assert_eq!(
        paged(&served, "prefix=summoning%2Forder-1", 3),
        listed(&["--prefix", "summoning/order-1"], dir.path())
    );
    assert_eq!(
        paged(&served, "kind=summoning&status=completed", 50),
        listed(&["--kind", "summoning", "--status", "completed"], dir.path())
    );
    // The page the browser sees holds the same rows, and counts them by status.
    let page = served.get("/?status=completed&limit=1000");
    assert_eq!(page.status, 200);
    let shown = page.body.matches("<tr data-id=").count();
    assert_eq!(shown, listed(&["--status", "completed"], dir.path()).len());
    assert!(page.body.contains(&format!("completed <b>{shown}</b>")), "the count of completed processes");
    // A bad filter is a 400 that says what is wrong.
    let bad = served.get("/api/processes?status=sleeping");
    assert_eq!(bad.status, 400);
    assert!(bad.json()["error"].as_str().unwrap().contains("sleeping"), "{}", bad.body);
    assert_eq!(served.get("/?limit=0").status, 400);
    assert_eq!(served.get("/processes/summoning%2Fno-such-order").status, 404);
}

#[test]
fn a_script_in_a_process_id_is_shown_as_text() {
    let dir = tempfile::tempdir().unwrap();
    imp_run(dir.path());
    let key = "<script>alert(1)</script>";
    let input = r#"{"order":"<script>alert(1)</script>","fee":5}"#;
    let out = crate::saga_cli(&["start", "summoning", key, "--input", input, "--db", "imp.redb"], dir.path());
    assert!(matches!(out.status.code(), Some(0 | 1)), "{}", crate::stderr(&out));
    let served =
        Served::start(&["serve", "--db", "imp.redb", "--addr", "127.0.0.1:0"], dir.path(), "console");
    let listing = served.get("/?prefix=summoning%2F%3Cscript");
    assert!(listing.body.contains("summoning/&lt;script&gt;alert(1)&lt;/script&gt;"), "{}", listing.body);
    let page = served.get("/processes/summoning%2F%3Cscript%3Ealert(1)%3C%2Fscript%3E");
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    for body in [&listing.body, &page.body] {
        assert!(!body.contains("<script>alert"), "a script reached the page");
    }
    assert!(page.header("content-security-policy").unwrap().contains("script-src 'self'"));
}

#[test]
fn beyond_loopback_the_console_needs_its_token() {
    let dir = tempfile::tempdir().unwrap();
    imp_run(dir.path());
    let refused = crate::saga_cli(&["serve", "--db", "imp.redb", "--addr", "0.0.0.0:0"], dir.path());
    assert_eq!(refused.status.code(), Some(2));
    let said = crate::stderr(&refused);
    assert_eq!(said.lines().count(), 1, "{said}");
    assert!(said.contains("token"), "{said}");

    let served = Served::start(
        &["serve", "--db", "imp.redb", "--addr", "0.0.0.0:0", "--token", "s3cret"],
        dir.path(),
        "console",
    );
    let addr = served.addr.clone();
    assert_eq!(served.get("/").status, 401);
    assert_eq!(served.get("/metrics").status, 401);
    assert_eq!(served.get("/api/processes").status, 401);
    assert_eq!(request(&addr, "GET", "/", &[("Authorization", "Bearer wrong")], "").status, 401);
    assert_eq!(request(&addr, "GET", "/", &[("Authorization", "Bearer s3cret")], "").status, 200);
    let with_query = served.get("/?token=s3cret");
    assert_eq!(with_query.status, 200);
    let cookie = with_query.header("set-cookie").unwrap().to_owned();
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    let pair = cookie.split(';').next().unwrap();
    assert_eq!(request(&addr, "GET", "/dead-letters", &[("Cookie", pair)], "").status, 200);
    // Health checks answer anyone; actions are POST only.
    assert_eq!(served.get("/healthz").status, 200);
    let as_get =
        request(&addr, "GET", "/processes/summoning%2Forder-1?action=retry", &[("Cookie", pair)], "");
    assert_eq!(as_get.status, 200, "a GET shows, it never acts");
    let foreign = request(
        &addr,
        "POST",
        "/processes/summoning%2Forder-1",
        &[
            ("Cookie", pair),
            ("Origin", "http://elsewhere.example"),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        "action=retry",
    );
    assert_eq!(foreign.status, 403, "a form from another site acts on nothing");

    // The token may come from the environment instead.
    let from_environment = Served::start_with(
        &["serve", "--db", "imp.redb", "--addr", "0.0.0.0:0"],
        dir.path(),
        "console",
        &[("SAGA_CONSOLE_TOKEN", "from-env")],
    );
    let addr = from_environment.addr.clone();
    assert_eq!(from_environment.get("/").status, 401);
    assert_eq!(request(&addr, "GET", "/", &[("Authorization", "Bearer s3cret")], "").status, 401);
    assert_eq!(request(&addr, "GET", "/", &[("Authorization", "Bearer from-env")], "").status, 200);
}

/// The samples of a Prometheus text exposition, by name with labels; panics on a line that is
/// not one (a `# TYPE` must come before its samples, a histogram's buckets must grow).
fn prometheus(text: &str) -> std::collections::BTreeMap<String, f64> {
    let mut samples = std::collections::BTreeMap::new();
    let mut typed = std::collections::BTreeMap::new();
    for line in text.lines().filter(|l| !l.is_empty()) {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            assert!(["counter", "gauge", "histogram"].contains(&kind), "{line}");
            typed.insert(name.to_owned(), kind.to_owned());
            continue;
        }
        if line.starts_with("# HELP ") {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("not a sample: {line}"));
        let name = series.split('{').next().unwrap();
        assert!(name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'), "{line}");
        let family = ["_bucket", "_sum", "_count"].iter().fold(name, |n, s| n.strip_suffix(s).unwrap_or(n));
        assert!(typed.contains_key(name) || typed.contains_key(family), "no TYPE before {line}");
        if series.contains('{') {
            assert!(series.ends_with('}') && series.contains("=\""), "{line}");
        }
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("not a number: {line}"));
        samples.insert(series.to_owned(), value);
    }
    for (name, kind) in &typed {
        if kind == "histogram" {
            let buckets: Vec<f64> = samples
                .iter()
                .filter(|(s, _)| s.starts_with(&format!("{name}_bucket{{")))
                .map(|(_, v)| *v)
                .collect();
            let total = samples[&format!("{name}_bucket{{le=\"+Inf\"}}")];
            assert!(buckets.iter().all(|b| *b <= total), "{name}: a bucket above +Inf");
            assert_eq!(total, samples[&format!("{name}_count")], "{name}: +Inf is the count");
        }
    }
    samples
}

#[test]
fn metrics_parse_as_prometheus_text_and_move_with_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "run",
        "document-voiding",
        "--db",
        "dv.redb",
        "--documents",
        "4",
        "--serve",
        "127.0.0.1:0",
        "--metrics",
        "127.0.0.1:0",
    ];
    let served = Served::start(&args, dir.path(), "console");
    let metrics_at = served
        .said
        .lines()
        .find_map(|l| l.strip_prefix("metrics: http://"))
        .unwrap()
        .trim_end_matches('/')
        .to_owned();
    let scrape = || {
        let response = request(&metrics_at, "GET", "/metrics", &[], "");
        assert_eq!(response.status, 200);
        assert!(response.header("content-type").unwrap().starts_with("text/plain; version=0.0.4"));
        prometheus(&response.body)
    };
    // The scenario's voidings end; then one more document is issued and voided from the page.
    let ended = |m: &std::collections::BTreeMap<String, f64>| {
        m["saga_processes{status=\"completed\"}"] + m["saga_processes{status=\"failed\"}"]
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let mut before = scrape();
    while ended(&before) < 1.0 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
        before = scrape();
    }
    assert!(before["saga_handled_messages_total"] > 0.0);
    assert!(before["saga_commits_total"] > 0.0);
    assert!(before["saga_commit_duration_seconds_count"] > 0.0);
    let form = [("Content-Type", "application/x-www-form-urlencoded")];
    request(&served.addr, "POST", "/documents/issue", &form, "document=doc-m&customer=customer-m");
    std::thread::sleep(std::time::Duration::from_millis(300));
    request(&served.addr, "POST", "/documents/void", &form, "document=doc-m");
    let mut after = scrape();
    while after["saga_processes{status=\"completed\"}"] <= before["saga_processes{status=\"completed\"}"]
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(std::time::Duration::from_millis(100));
        after = scrape();
    }
    assert!(after["saga_handled_messages_total"] > before["saga_handled_messages_total"]);
    assert!(after["saga_commits_total"] > before["saga_commits_total"]);
    assert_eq!(
        after["saga_processes{status=\"completed\"}"],
        before["saga_processes{status=\"completed\"}"] + 1.0,
        "the voiding asked from the page completed"
    );
    assert_eq!(request(&metrics_at, "GET", "/readyz", &[], "").status, 200);
    assert_eq!(served.get("/healthz").body, "ok\n");
}

/// `method path` with a JSON `body` to the served run.
fn send_json(served: &Served, method: &str, path: &str, body: &str) -> served::Response {
    request(&served.addr, method, path, &[("Content-Type", "application/json")], body)
}

#[test]
fn the_petstores_rest_api_answers_with_status_codes_and_json_errors() {
    let dir = tempfile::tempdir().unwrap();
    let args =
        ["run", "petstore", "--db", "pets.redb", "--pets", "3", "--orders", "3", "--serve", "127.0.0.1:0"];
    let served = Served::start(&args, dir.path(), "console");
    let created = send_json(&served, "POST", "/pet", r#"{"id":"rex","name":"Rex","photo":"rex.jpg"}"#);
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.header("location"), Some("/pet/rex"));
    let rex = served.get("/pet/rex").json();
    assert_eq!(
        (rex["name"].as_str(), rex["photo"].as_str(), rex["status"].as_str()),
        (Some("Rex"), Some("rex.jpg"), Some("available"))
    );
    assert_eq!(
        send_json(&served, "POST", "/pet", r#"{"id":"rex","name":"Rex","photo":"rex.jpg"}"#).status,
        409
    );
    let malformed = send_json(&served, "POST", "/pet", r#"{"id": "rex", "name": "#);
    assert_eq!(malformed.status, 400);
    assert!(malformed.json()["error"].as_str().is_some(), "{}", malformed.body);
    assert_eq!(
        send_json(&served, "POST", "/pet", r#"{"id":"rex"}"#).status,
        400,
        "a pet without a name or photo"
    );
    let updated = send_json(&served, "PUT", "/pet", r#"{"id":"rex","name":"Rex II","photo":"rex-2.jpg"}"#);
    assert_eq!(updated.status, 200, "{}", updated.body);
    assert_eq!(
        (updated.json()["name"].as_str(), updated.json()["photo"].as_str()),
        (Some("Rex II"), Some("rex-2.jpg"))
    );
    assert_eq!(
        send_json(&served, "PUT", "/pet", r#"{"id":"nobody","name":"N","photo":"n.jpg"}"#).status,
        404
    );
    assert_eq!(served.get("/pet/nobody").status, 404);
    assert_eq!(served.get("/pet/nobody").json()["error"].as_str().map(|e| e.contains("nobody")), Some(true));

    // Two orders for one pet at once: exactly one reserves it, the other is refused.
    let orders: Vec<u16> = std::thread::scope(|s| {
        let placing: Vec<_> = ["first", "second"]
            .iter()
            .map(|id| {
                let body = format!(r#"{{"id":"{id}","petId":"rex","user":"user-0"}}"#);
                let served = &served;
                s.spawn(move || send_json(served, "POST", "/store/order", &body).status)
            })
            .collect();
        placing.into_iter().map(|p| p.join().unwrap()).collect()
    });
    let mut sorted = orders.clone();
    sorted.sort();
    assert_eq!(sorted, vec![201, 409], "{orders:?}");
    assert_eq!(
        send_json(&served, "POST", "/store/order", r#"{"id":"third","petId":"rex","user":"user-1"}"#).status,
        409
    );
    assert_eq!(
        send_json(&served, "POST", "/store/order", r#"{"id":"fourth","petId":"nobody","user":"user-1"}"#)
            .status,
        404
    );
    assert_eq!(send_json(&served, "POST", "/store/order", r#"{"id":"fifth"}"#).status, 400);
    let deleted = request(&served.addr, "DELETE", "/pet/rex", &[], "");
    assert_eq!(deleted.status, 409, "a reserved or sold pet is not deleted: {}", deleted.body);
    let winner = if orders[0] == 201 { "first" } else { "second" };
    let order = served.get(&format!("/store/order/{winner}")).json();
    assert_eq!(order["petId"], "rex");
    assert!(["placed", "completed", "cancelled"].contains(&order["status"].as_str().unwrap()), "{order}");
    assert_eq!(served.get("/store/order/nobody").status, 404);

    assert_eq!(
        send_json(&served, "POST", "/pet", r#"{"id":"tom","name":"Tom","photo":"tom.jpg"}"#).status,
        201
    );
    assert_eq!(request(&served.addr, "DELETE", "/pet/tom", &[], "").status, 204);
    assert_eq!(served.get("/pet/tom").status, 404);
    assert_eq!(request(&served.addr, "DELETE", "/pet/tom", &[], "").status, 404);
    let inventory = served.get("/store/inventory").json();
    assert!(inventory["deleted"].as_u64().unwrap() >= 1, "{inventory}");
    assert!(
        inventory["reserved"].as_u64().unwrap() + inventory["sold"].as_u64().unwrap() >= 1,
        "{inventory}"
    );
}

#[test]
fn the_bakerys_menu_shows_prices_and_an_order_placed_from_it_runs_its_saga() {
    let dir = tempfile::tempdir().unwrap();
    let args = ["run", "bakery", "--db", "bakery.redb", "--orders", "3", "--serve", "127.0.0.1:0"];
    let served = Served::start(&args, dir.path(), "console");
    let page = served.get("/bakery");
    assert_eq!(page.status, 200);
    for product in ["bread", "donut"] {
        assert!(page.body.contains(&format!(r#"<tr data-product="{product}">"#)), "{}", page.body);
    }
    let form = [("Content-Type", "application/x-www-form-urlencoded")];
    let placed = request(&served.addr, "POST", "/bakery/order", &form, "customer=walk-in&bread=1&donut=0");
    assert_eq!(placed.status, 303);
    let location = placed.header("location").unwrap().to_owned();
    assert!(location.starts_with("/processes/bakery-order%2Fweb-"), "{location}");
    let process = location.split('?').next().unwrap().to_owned();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let mut shown = served.get(&process);
    while !(shown.status == 200
        && ["completed", "compensated"].iter().any(|s| shown.body.contains(&format!(">{s}</span>"))))
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(std::time::Duration::from_millis(100));
        shown = served.get(&process);
    }
    assert!(
        shown.body.contains(r#"id="process-status">completed"#)
            || shown.body.contains(r#"id="process-status">compensated"#),
        "{}",
        shown.body
    );
    let refused = request(&served.addr, "POST", "/bakery/order", &form, "customer=walk-in&bread=many");
    assert!(refused.header("location").unwrap().contains("error"), "a bad quantity is refused");
}

/// Reads the console's event stream at `addr` until an event names `id` (or 30 s pass).
fn hears(addr: &str, id: &str, after: impl FnOnce()) -> bool {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(std::time::Duration::from_millis(200))).unwrap();
    stream.write_all(format!("GET /events HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes()).unwrap();
    let mut heard = String::new();
    let mut buffer = [0u8; 4096];
    let mut after = Some(after);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while std::time::Instant::now() < deadline {
        if let Ok(n) = stream.read(&mut buffer) {
            heard.push_str(&String::from_utf8_lossy(&buffer[..n]));
        }
        // Once the stream is open, what is done is heard.
        if heard.contains("text/event-stream")
            && let Some(after) = after.take()
        {
            after();
        }
        if heard.contains(&format!("\"{id}\"")) {
            return true;
        }
    }
    false
}

#[test]
fn the_console_of_a_deployment_lists_what_its_services_announce_and_acts_through_the_broker() {
    let Some(broker) = saga_core::testkit::NatsServer::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let url = broker.url();
    let service = |name: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_saga-cli"))
            .args(["service", "document-voiding", name, "--transport", &url, "--db", &format!("{name}.redb")])
            .current_dir(dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    let _services = crate::Children(["reports", "voiding"].iter().map(|n| service(n)).collect());
    // A service apart serves its metrics too.
    let billing = Served::start(
        &[
            "service",
            "document-voiding",
            "billing",
            "--transport",
            &url,
            "--db",
            "billing.redb",
            "--metrics",
            "127.0.0.1:0",
        ],
        dir.path(),
        "metrics",
    );
    let drive = crate::saga_cli(
        &["drive", "document-voiding", "--documents", "12", "--transport", &url, "--db", "driver.redb"],
        dir.path(),
    );
    assert_eq!(drive.status.code(), Some(0), "{}", crate::stderr(&drive));
    let billed = request(&billing.addr, "GET", "/metrics", &[], "");
    assert_eq!(billed.status, 200);
    let billed = prometheus(&billed.body);
    assert!(billed["saga_handled_messages_total"] > 0.0, "{billed:?}");
    assert!(billed["saga_commits_total"] > 0.0, "{billed:?}");
    let args = [
        "serve",
        "--transport",
        &url,
        "--domain",
        "document-voiding",
        "--addr",
        "127.0.0.1:0",
        "--timeout",
        "20",
    ];
    let served = Served::start(&args, dir.path(), "console");
    let announced =
        crate::saga_cli(&["list", "--json", "--transport", &url, "--domain", "document-voiding"], dir.path());
    let announced: Vec<String> = crate::json(&announced)
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect();
    assert!(!announced.is_empty());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let mut listed = paged(&served, "", 5);
    while listed.len() < announced.len() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(200));
        listed = paged(&served, "", 5);
    }
    assert_eq!(listed, announced, "the console lists what list --transport lists, in its order");
    let failed = paged(&served, "status=failed", 50);
    let id = failed.first().expect("a voiding failed").clone();
    let page = served.get(&format!("/processes/{}", id.replace('/', "%2F")));
    assert_eq!(page.status, 200);
    assert!(page.body.contains("kept by <b>voiding</b>"), "the voiding service answered: {}", page.body);

    let form = [("Content-Type", "application/x-www-form-urlencoded")];
    let path = format!("/processes/{}", id.replace('/', "%2F"));
    let mut said = String::new();
    let heard = hears(&served.addr, &id, || {
        let acted = request(&served.addr, "POST", &path, &form, "action=acknowledge");
        assert_eq!(acted.status, 303);
        said = acted.header("location").unwrap().to_owned();
    });
    assert!(said.contains("acknowledge%20applied%20through%20the%20broker"), "{said}");
    assert!(heard, "the page was told of the acknowledgement");
    let now = served.get(&format!("/api/processes/{}", id.replace('/', "%2F"))).json();
    assert_eq!(now["meta"]["status"], "acknowledged", "{now}");
    assert_eq!(served.get("/dead-letters").status, 200);
}

#[test]
fn beside_a_run_that_holds_the_file_the_console_reads_it_and_says_it_cannot_act_on_it() {
    let dir = tempfile::tempdir().unwrap();
    let args = ["run", "document-voiding", "--db", "dv.redb", "--documents", "6", "--serve", "127.0.0.1:0"];
    let run = Served::start(&args, dir.path(), "console");
    // A voiding of a document whose report was published fails and waits for an operator.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let failed = loop {
        if let Some(id) = paged(&run, "status=failed", 50).first() {
            break id.clone();
        }
        assert!(std::time::Instant::now() < deadline, "no voiding failed");
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    let beside = Served::start(&["serve", "--db", "dv.redb", "--addr", "127.0.0.1:0"], dir.path(), "console");
    assert!(paged(&beside, "status=failed", 50).contains(&failed), "the file reads while the run holds it");
    let form = [("Content-Type", "application/x-www-form-urlencoded")];
    let path = format!("/processes/{}", failed.replace('/', "%2F"));
    let acted = request(&beside.addr, "POST", &path, &form, "action=acknowledge");
    assert_eq!(acted.status, 303);
    let said = acted.header("location").unwrap().to_owned();
    assert!(said.contains("held%20by%20a%20running%20process"), "it says it cannot, and why: {said}");
    let told = beside.get(&said);
    assert!(told.body.contains(r#"<p class="said refused" id="said">"#), "shown as refused: {}", told.body);
    let page = beside.get(&format!("{path}?status=x"));
    assert!(page.body.contains(r#"id="process-status">failed"#), "nothing was done");
    let (code, _) = run.interrupt();
    assert_eq!(code, Some(0));
}
