//! Ferrum Studio's HTTP API (README "Ferrum Studio"): every route, every error class
//! and the security rules, driven through the axum Router with
//! `tower::ServiceExt::oneshot`; plus the real server's lifecycle over TCP.

use std::io::{Read, Write};
use std::net::TcpStream;

use axum::body::{to_bytes, Body};
use axum::http::{header, Method, Request, StatusCode};
use axum::Router;
use ferrumdb::documents::Documents;
use ferrumdb::server::{router, Studio, StudioError, StudioOptions, MAX_BODY_BYTES};
use ferrumdb::{Config, Database};
use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
use serde_json::{json, Value};
use tower::ServiceExt;

/// An in-memory database with its index layer.
fn docs() -> Documents {
    Documents::open(Database::open(&Config::new().in_memory()).unwrap()).unwrap()
}

fn app(docs: &Documents) -> Router {
    router(docs.clone(), &StudioOptions::default())
}

fn app_with(docs: &Documents, options: StudioOptions) -> Router {
    router(docs.clone(), &options)
}

struct Reply {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: Vec<u8>,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(&self.body)))
    }

    /// The `error` message of a JSON error reply, checking its shape.
    fn error(&self) -> String {
        let body = self.json();
        let obj = body.as_object().expect("error body is an object");
        assert_eq!(obj.len(), 1, "error body has only \"error\": {body}");
        obj["error"]
            .as_str()
            .expect("error is a string")
            .to_string()
    }
}

fn send(app: &Router, req: Request<Body>) -> Reply {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let res = app.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let headers = res.headers().clone();
        let body = to_bytes(res.into_body(), usize::MAX)
            .await
            .unwrap()
            .to_vec();
        Reply {
            status,
            headers,
            body,
        }
    })
}

fn get(app: &Router, uri: &str) -> Reply {
    send(app, Request::get(uri).body(Body::empty()).unwrap())
}

/// A mutating request as the Studio page sends it.
fn mutate(app: &Router, method: Method, uri: &str, body: impl Into<Body>) -> Reply {
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .header("x-ferrum-studio", "1")
        .header(header::CONTENT_TYPE, "application/json")
        .body(body.into())
        .unwrap();
    send(app, req)
}

fn doc_uri(key: &str) -> String {
    format!("/api/docs/{}", utf8_percent_encode(key, NON_ALPHANUMERIC))
}

fn put_json(docs: &Documents, key: &str, value: Value) {
    docs.database()
        .put_raw(key, value.to_string().as_bytes())
        .unwrap();
}

fn stored(docs: &Documents, key: &str) -> Option<Value> {
    docs.database()
        .get_raw(key)
        .unwrap()
        .map(|v| serde_json::from_slice(v.as_bytes()).unwrap())
}

#[test]
fn stats_is_db_stats() {
    let d = docs();
    put_json(&d, "a", json!(1));
    put_json(&d, "b", json!(2));
    d.database().delete("b").unwrap();
    let r = get(&app(&d), "/api/stats");
    assert_eq!(r.status, StatusCode::OK);
    let s = r.json();
    for field in [
        "keys",
        "gets",
        "sets",
        "deletes",
        "ops_per_sec",
        "uptime_s",
        "file_bytes",
        "live_bytes",
    ] {
        assert!(s.get(field).is_some(), "stats lacks {field}: {s}");
    }
    assert_eq!(s["keys"], 1);
    assert_eq!(s["sets"], 2);
    assert_eq!(s["deletes"], 1);
    assert_eq!(r.headers[header::CACHE_CONTROL], "no-store");
}

#[test]
fn keys_page_with_cursor_and_prefix() {
    let d = docs();
    for i in 0..250 {
        put_json(&d, &format!("user:{i:03}"), json!(i));
    }
    put_json(&d, "order:1", json!({}));
    let app = app(&d);
    let mut seen = Vec::new();
    let mut uri = "/api/keys?prefix=user:&limit=100".to_string();
    let mut pages = 0;
    loop {
        let page = get(&app, &uri).json();
        pages += 1;
        let keys: Vec<String> = serde_json::from_value(page["keys"].clone()).unwrap();
        seen.extend(keys);
        match page["next"].as_str() {
            Some(cursor) => {
                uri = format!("/api/keys?prefix=user:&limit=100&after={cursor}");
            }
            None => {
                assert!(page["next"].is_null());
                break;
            }
        }
    }
    assert_eq!(pages, 3);
    let expected: Vec<String> = (0..250).map(|i| format!("user:{i:03}")).collect();
    assert_eq!(seen, expected);
    // No prefix: every key, in key order; default limit.
    let all = get(&app, "/api/keys").json();
    assert_eq!(all["keys"][0], "order:1");
    assert_eq!(all["keys"].as_array().unwrap().len(), 100);
    // An exact fit has no next page.
    let exact = get(&app, "/api/keys?prefix=order:&limit=1").json();
    assert_eq!(exact, json!({"keys": ["order:1"], "next": null}));
    let none = get(&app, "/api/keys?prefix=zzz").json();
    assert_eq!(none, json!({"keys": [], "next": null}));
}

#[test]
fn key_tree_groups_on_colons() {
    let d = docs();
    for key in [
        "a",
        "user:1",
        "user:2",
        "user:x:1",
        "user:x:2",
        "order:2026:1",
        "z:",
        "z",
    ] {
        put_json(&d, key, json!(1));
    }
    let app = app(&d);
    let top = get(&app, "/api/tree").json();
    assert_eq!(
        top,
        json!({
            "prefix": "",
            "groups": [
                {"prefix": "order:", "name": "order", "count": 1, "capped": false},
                {"prefix": "user:", "name": "user", "count": 4, "capped": false},
                {"prefix": "z:", "name": "z", "count": 1, "capped": false},
            ],
            "keys": ["a", "z"],
            "more": false,
        })
    );
    let user = get(&app, "/api/tree?prefix=user:").json();
    assert_eq!(
        user["groups"],
        json!([{"prefix": "user:x:", "name": "x", "count": 2, "capped": false}])
    );
    assert_eq!(user["keys"], json!(["user:1", "user:2"]));
    let limited = get(&app, "/api/tree?limit=2").json();
    assert_eq!(limited["keys"], json!(["a"]));
    assert_eq!(limited["groups"][0]["prefix"], "order:");
    assert_eq!(limited["groups"].as_array().unwrap().len(), 1);
    assert_eq!(limited["more"], true);
    assert_eq!(
        get(&app, "/api/tree?limit=0").status,
        StatusCode::BAD_REQUEST
    );
}

#[test]
fn key_tree_caps_big_groups() {
    let d = docs();
    for i in 0..10_050 {
        put_json(&d, &format!("big:{i:05}"), json!(i));
    }
    put_json(&d, "small:1", json!(1));
    let top = get(&app(&d), "/api/tree").json();
    assert_eq!(
        top["groups"],
        json!([
            {"prefix": "big:", "name": "big", "count": 10_000, "capped": true},
            {"prefix": "small:", "name": "small", "count": 1, "capped": false},
        ])
    );
}

#[test]
fn bad_paging_is_400() {
    let d = docs();
    put_json(&d, "user:1", json!(1));
    put_json(&d, "user:2", json!(1));
    let app = app(&d);
    for uri in [
        "/api/keys?limit=0",
        "/api/keys?limit=1001",
        "/api/keys?limit=ten",
        "/api/keys?limit=-1",
        "/api/keys?after=zz",
        "/api/keys?after=abc",
        "/api/keys?after=ff",
        "/api/tree?limit=1001",
        "/api/tree?limit=ten",
    ] {
        let r = get(&app, uri);
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{uri}");
        assert!(!r.error().is_empty());
    }
    // A cursor made for one prefix is refused for another.
    let page = get(&app, "/api/keys?prefix=user:&limit=1").json();
    let cursor = page["next"].as_str().unwrap().to_string();
    let r = get(&app, &format!("/api/keys?prefix=order:&after={cursor}"));
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.error().contains("another prefix"), "{}", r.error());
}

#[test]
fn a_unique_index_refusal_is_409_and_writes_nothing() {
    let d = docs();
    d.create_index_with("email", true, &mut |_, _| {}).unwrap();
    put_json(&d, "user:1", json!({"email": "a@x"}));
    let app = app(&d);
    let r = mutate(&app, Method::PUT, &doc_uri("user:2"), r#"{"email":"a@x"}"#);
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.error());
    assert!(r.error().contains("a@x"), "{}", r.error());
    assert_eq!(stored(&d, "user:2"), None);
}

#[test]
fn docs_with_awkward_keys_round_trip() {
    let d = docs();
    let app = app(&d);
    for key in [
        "plain",
        "a/b/c",
        "/leading-slash",
        "with space",
        "ns:sub:leaf",
        "ünï:cødé/😀",
        "100%",
        "q?x=1#frag",
    ] {
        let value = json!({"key": key, "n": [1, 2.5, null, true]});
        let r = mutate(&app, Method::PUT, &doc_uri(key), value.to_string());
        assert_eq!(r.status, StatusCode::OK, "{key}: {:?}", r.json());
        assert_eq!(r.json()["created"], true);
        // The engine sees exactly what was sent.
        assert_eq!(stored(&d, key), Some(value.clone()), "{key}");
        let back = get(&app, &doc_uri(key));
        assert_eq!(back.status, StatusCode::OK, "{key}");
        assert_eq!(
            back.json(),
            json!({"key": key, "value": value, "ttl": null})
        );
    }
    // Unencoded slashes and colons reach the same key.
    assert_eq!(get(&app, "/api/docs/a/b/c").json()["key"], "a/b/c");
    assert_eq!(
        get(&app, "/api/docs/ns:sub:leaf").json()["key"],
        "ns:sub:leaf"
    );
    // Overwriting reports created: false.
    let r = mutate(&app, Method::PUT, "/api/docs/plain", "42");
    assert_eq!(r.json()["created"], false);
    assert_eq!(stored(&d, "plain"), Some(json!(42)));
}

#[test]
fn python_side_writes_are_visible_live() {
    let d = docs();
    let app = app(&d);
    assert_eq!(get(&app, "/api/docs/k").status, StatusCode::NOT_FOUND);
    put_json(&d, "k", json!({"v": 1}));
    assert_eq!(get(&app, "/api/docs/k").json()["value"], json!({"v": 1}));
    d.database().delete("k").unwrap();
    assert_eq!(get(&app, "/api/docs/k").status, StatusCode::NOT_FOUND);
}

#[test]
fn ttl_is_reported() {
    let d = docs();
    d.database()
        .put_raw_with_ttl("s", b"1", std::time::Duration::from_secs(100))
        .unwrap();
    let ttl = get(&app(&d), "/api/docs/s").json()["ttl"].as_f64().unwrap();
    assert!(ttl > 0.0 && ttl <= 100.0, "{ttl}");
}

#[test]
fn doc_errors() {
    let d = docs();
    put_json(&d, "keep", json!({"v": 1}));
    let app = app(&d);
    let r = get(&app, "/api/docs/missing");
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r.error().contains("missing"));
    assert_eq!(
        mutate(&app, Method::DELETE, "/api/docs/missing", Body::empty()).status,
        StatusCode::NOT_FOUND
    );
    // Malformed JSON, an empty body: 400 and nothing written.
    for body in ["{bad", "", "[1,", "{\"a\":1} trailing", "NaN"] {
        let r = mutate(&app, Method::PUT, "/api/docs/keep", body);
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body:?}");
        assert!(!r.error().is_empty());
        assert_eq!(stored(&d, "keep"), Some(json!({"v": 1})), "{body:?}");
    }
    // A path that does not decode to UTF-8 is no key.
    let r = mutate(&app, Method::PUT, "/api/docs/%FF%FE", "1");
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(!r.error().is_empty());
    // The key is missing.
    assert_eq!(get(&app, "/api/docs/").status, StatusCode::BAD_REQUEST);
    // Insert-only: an existing key is 412 and untouched.
    let req = Request::put("/api/docs/keep")
        .header("x-ferrum-studio", "1")
        .header(header::IF_NONE_MATCH, "*")
        .body(Body::from("2"))
        .unwrap();
    let r = send(&app, req);
    assert_eq!(r.status, StatusCode::PRECONDITION_FAILED);
    assert!(r.error().contains("already exists"));
    assert_eq!(stored(&d, "keep"), Some(json!({"v": 1})));
    let req = Request::put("/api/docs/fresh")
        .header("x-ferrum-studio", "1")
        .header(header::IF_NONE_MATCH, "*")
        .body(Body::from("2"))
        .unwrap();
    assert_eq!(send(&app, req).status, StatusCode::OK);
    assert_eq!(stored(&d, "fresh"), Some(json!(2)));
    // Delete.
    let r = mutate(&app, Method::DELETE, "/api/docs/keep", Body::empty());
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json(), json!({"key": "keep", "deleted": true}));
    assert_eq!(stored(&d, "keep"), None);
}

#[test]
fn huge_body_is_413() {
    let d = docs();
    let app = app(&d);
    let big = format!("\"{}\"", "x".repeat(MAX_BODY_BYTES));
    let r = mutate(&app, Method::PUT, "/api/docs/big", big);
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(r.error().contains("too large"), "{}", r.error());
    assert_eq!(stored(&d, "big"), None);
    // The server goes on answering.
    assert_eq!(get(&app, "/api/stats").status, StatusCode::OK);
}

#[test]
fn query_returns_results_and_plan() {
    let d = docs();
    for i in 0..20 {
        put_json(
            &d,
            &format!("u{i:02}"),
            json!({"role": if i % 2 == 0 { "admin" } else { "user" }, "score": i}),
        );
    }
    let app = app(&d);
    let body =
        json!({"filter": {"role": "admin", "score": {"$gte": 10}}, "sort": "-score", "limit": 3});
    let r = mutate(&app, Method::POST, "/api/query", body.to_string());
    assert_eq!(r.status, StatusCode::OK);
    let v = r.json();
    assert_eq!(
        v["results"],
        json!([
            ["u18", {"role": "admin", "score": 18}],
            ["u16", {"role": "admin", "score": 16}],
            ["u14", {"role": "admin", "score": 14}]
        ])
    );
    assert_eq!(v["more"], true);
    assert_eq!(v["plan"]["scan"], true);
    assert!(v["plan"]["index"].is_null());
    // With an index the plan names it.
    d.create_index("role").unwrap();
    let v = mutate(
        &app,
        Method::POST,
        "/api/query",
        json!({"filter": {"role": "user"}}).to_string(),
    )
    .json();
    assert_eq!(v["results"].as_array().unwrap().len(), 10);
    assert_eq!(v["plan"]["index"], "role");
    assert_eq!(v["more"], false);
    // No filter means everything.
    let v = mutate(&app, Method::POST, "/api/query", "{}").json();
    assert_eq!(v["results"].as_array().unwrap().len(), 20);
    // Explain alone.
    let v = mutate(
        &app,
        Method::POST,
        "/api/explain",
        json!({"filter": {"role": "user"}}).to_string(),
    )
    .json();
    assert_eq!(v["plan"]["index"], "role");
    assert!(v["plan"]["estimated_rows"].is_number());
}

#[test]
fn bad_queries_are_400() {
    let d = docs();
    put_json(&d, "a", json!({"x": 1}));
    let app = app(&d);
    for body in [
        "not json",
        "[1, 2]",
        r#"{"filter": [1]}"#,
        r#"{"filter": {"x": {"$bogus": 1}}}"#,
        r#"{"filter": {"$or": 3}}"#,
        r#"{"filter": {}, "limit": -1}"#,
        r#"{"filter": {}, "limit": "ten"}"#,
        r#"{"filter": {}, "limit": 10001}"#,
        r#"{"filter": {}, "sort": 7}"#,
    ] {
        let r = mutate(&app, Method::POST, "/api/query", body);
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}");
        assert!(!r.error().is_empty());
    }
    let r = mutate(&app, Method::POST, "/api/explain", r#"{"filter": 1}"#);
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}

#[test]
fn find_by_field() {
    let d = docs();
    put_json(&d, "p1", json!({"address": {"city": "Paris"}}));
    put_json(&d, "p2", json!({"address": {"city": "Paris"}}));
    put_json(&d, "l1", json!({"address": {"city": "Lyon"}}));
    let app = app(&d);
    let v = mutate(
        &app,
        Method::POST,
        "/api/find",
        json!({"field": "address.city", "value": "Paris"}).to_string(),
    )
    .json();
    assert_eq!(v["keys"], json!(["p1", "p2"]));
    assert_eq!(v["count"], 2);
    for body in [
        r#"{"value": 1}"#,
        r#"{"field": ""}"#,
        r#"{"field": "a"}"#,
        "3",
    ] {
        let r = mutate(&app, Method::POST, "/api/find", body);
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}");
    }
}

#[test]
fn indexes_list_create_drop() {
    let d = docs();
    put_json(&d, "a", json!({"role": "x"}));
    let app = app(&d);
    assert_eq!(get(&app, "/api/indexes").json(), json!({"indexes": []}));
    let r = mutate(&app, Method::POST, "/api/indexes", r#"{"field": "role"}"#);
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(r.json(), json!({"field": "role", "created": true}));
    assert_eq!(d.indexes(), vec!["role".to_string()]);
    let r = mutate(&app, Method::POST, "/api/indexes", r#"{"field": "role"}"#);
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["created"], false);
    assert_eq!(
        get(&app, "/api/indexes").json(),
        json!({"indexes": [{"field": "role", "entries": 1}]})
    );
    for body in [
        r#"{"field": ""}"#,
        r#"{"field": 3}"#,
        "{}",
        "[]",
        "{",
        r#"{"field": "a..b"}"#,
    ] {
        let r = mutate(&app, Method::POST, "/api/indexes", body);
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}");
        assert!(!r.error().is_empty());
    }
    let r = mutate(&app, Method::DELETE, "/api/indexes/role", Body::empty());
    assert_eq!(r.status, StatusCode::OK);
    assert!(d.indexes().is_empty());
    let r = mutate(&app, Method::DELETE, "/api/indexes/role", Body::empty());
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[test]
fn overview_and_metrics() {
    let d = docs();
    put_json(&d, "a", json!({"v": 1}));
    put_json(&d, "a", json!({"v": 2}));
    d.create_index("v").unwrap();
    let app = app(&d);
    let o = get(&app, "/api/overview").json();
    assert_eq!(o["path"], ":memory:");
    assert_eq!(o["keys"], 1);
    assert_eq!(o["studio_read_only"], false);
    let file = o["file_bytes"].as_u64().unwrap();
    let live = o["live_bytes"].as_u64().unwrap();
    assert!(live < file, "the overwritten record is garbage: {o}");
    assert_eq!(o["garbage_bytes"].as_u64().unwrap(), file - live);
    assert_eq!(o["indexes"], json!([{"field": "v", "entries": 1}]));
    let m = get(&app, "/api/metrics").json();
    let samples = m["samples"].as_array().unwrap();
    assert_eq!(samples.len(), 1);
    assert_eq!(samples[0]["sets"], 2);
    assert_eq!(m["stats"]["keys"], 1);
    assert_eq!(m["interval_s"], 1.0);
}

#[test]
fn routing_errors_are_json() {
    let d = docs();
    let app = app(&d);
    let r = get(&app, "/api/nope");
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(!r.error().is_empty());
    assert_eq!(get(&app, "/nope.html").status, StatusCode::NOT_FOUND);
    let r = mutate(&app, Method::POST, "/api/stats", "{}");
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(r.error().contains("not allowed"));
    let r = mutate(&app, Method::PATCH, "/api/docs/x", "1");
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(!r.error().is_empty());
    // A closed database answers 503, and the server lives on.
    d.close().unwrap();
    let r = get(&app, "/api/stats");
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(r.error().contains("closed"));
}

#[test]
fn page_and_assets_are_embedded() {
    let d = docs();
    let app = app(&d);
    let r = get(&app, "/");
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.headers[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let html = String::from_utf8(r.body).unwrap();
    assert!(html.contains("Ferrum Studio") && html.contains("/app.js"));
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "no CDN"
    );
    assert_eq!(r.headers[header::X_FRAME_OPTIONS], "DENY");
    assert!(r.headers[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap()
        .contains("default-src 'self'"));
    for (path, kind) in [
        ("/app.js", "text/javascript"),
        ("/app.css", "text/css"),
        ("/favicon.svg", "image/svg+xml"),
    ] {
        let r = get(&app, path);
        assert_eq!(r.status, StatusCode::OK, "{path}");
        assert!(r.headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with(kind));
        assert!(!r.body.is_empty());
    }
}

#[test]
fn mutations_need_the_studio_header() {
    let d = docs();
    let app = app(&d);
    for (method, uri, body) in [
        (Method::PUT, "/api/docs/k", "1"),
        (Method::DELETE, "/api/docs/k", ""),
        (Method::POST, "/api/indexes", r#"{"field": "a"}"#),
        (Method::POST, "/api/query", "{}"),
    ] {
        let r = send(
            &app,
            Request::builder()
                .method(method.clone())
                .uri(uri)
                .body(Body::from(body))
                .unwrap(),
        );
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{method} {uri}");
        assert!(r.error().contains("X-Ferrum-Studio"));
        // A wrong value does not count either.
        let r = send(
            &app,
            Request::builder()
                .method(method.clone())
                .uri(uri)
                .header("x-ferrum-studio", "yes")
                .body(Body::from(body))
                .unwrap(),
        );
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{method} {uri}");
    }
    assert_eq!(stored(&d, "k"), None);
    assert!(d.indexes().is_empty());
}

#[test]
fn cors_preflight_and_cross_origin_are_refused() {
    let d = docs();
    let app = app(&d);
    let r = send(
        &app,
        Request::builder()
            .method(Method::OPTIONS)
            .uri("/api/docs/k")
            .header(header::ORIGIN, "https://evil.example")
            .header("access-control-request-method", "PUT")
            .header("access-control-request-headers", "x-ferrum-studio")
            .body(Body::empty())
            .unwrap(),
    );
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.headers.get("access-control-allow-origin").is_none());
    assert!(r.error().contains("CORS"));
    // Even with the header, a mutation from another origin is refused.
    let r = send(
        &app,
        Request::put("/api/docs/k")
            .header("x-ferrum-studio", "1")
            .header(header::HOST, "127.0.0.1:7474")
            .header(header::ORIGIN, "http://evil.example")
            .body(Body::from("1"))
            .unwrap(),
    );
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // The page's own origin is fine.
    let r = send(
        &app,
        Request::put("/api/docs/k")
            .header("x-ferrum-studio", "1")
            .header(header::HOST, "127.0.0.1:7474")
            .header(header::ORIGIN, "http://127.0.0.1:7474")
            .body(Body::from("1"))
            .unwrap(),
    );
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(stored(&d, "k"), Some(json!(1)));
}

#[test]
fn dns_rebinding_host_is_refused_on_loopback() {
    let d = docs();
    let app = app(&d);
    for (host, ok) in [
        ("127.0.0.1:7474", true),
        ("localhost:7474", true),
        ("[::1]:7474", true),
        ("attacker.example:7474", false),
        ("192.168.1.5:7474", false),
    ] {
        let r = send(
            &app,
            Request::get("/api/stats")
                .header(header::HOST, host)
                .body(Body::empty())
                .unwrap(),
        );
        assert_eq!(r.status == StatusCode::OK, ok, "{host}: {}", r.status);
        if !ok {
            assert_eq!(r.status, StatusCode::FORBIDDEN);
            assert!(r.error().contains("DNS rebinding"));
        }
    }
    // A non-loopback bind (which has a token) accepts any host name.
    let open = app_with(
        &d,
        StudioOptions {
            host: "0.0.0.0".into(),
            token: Some("s3cret".into()),
            ..Default::default()
        },
    );
    let r = send(
        &open,
        Request::get("/api/stats")
            .header(header::HOST, "db.internal:7474")
            .header(header::AUTHORIZATION, "Bearer s3cret")
            .body(Body::empty())
            .unwrap(),
    );
    assert_eq!(r.status, StatusCode::OK);
}

#[test]
fn token_guards_the_api() {
    let d = docs();
    put_json(&d, "k", json!(1));
    let app = app_with(
        &d,
        StudioOptions {
            token: Some("s3cret".into()),
            ..Default::default()
        },
    );
    let with_auth = |auth: Option<&str>| {
        let mut b = Request::get("/api/docs/k");
        if let Some(a) = auth {
            b = b.header(header::AUTHORIZATION, a);
        }
        send(&app, b.body(Body::empty()).unwrap())
    };
    for bad in [
        None,
        Some("Bearer wrong"),
        Some("s3cret"),
        Some("Bearer s3cre"),
        Some("Basic s3cret"),
    ] {
        let r = with_auth(bad);
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{bad:?}");
        assert!(r.error().contains("token"));
    }
    assert_eq!(with_auth(Some("Bearer s3cret")).status, StatusCode::OK);
    // Mutations need both the token and the header.
    let r = send(
        &app,
        Request::put("/api/docs/k")
            .header("x-ferrum-studio", "1")
            .body(Body::from("2"))
            .unwrap(),
    );
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = send(
        &app,
        Request::put("/api/docs/k")
            .header("x-ferrum-studio", "1")
            .header(header::AUTHORIZATION, "Bearer s3cret")
            .body(Body::from("2"))
            .unwrap(),
    );
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(stored(&d, "k"), Some(json!(2)));
    // The page itself carries no data and loads without the token.
    assert_eq!(get(&app, "/").status, StatusCode::OK);
    assert_eq!(get(&app, "/app.js").status, StatusCode::OK);
}

#[test]
fn read_only_studio_refuses_every_change() {
    let d = docs();
    put_json(&d, "k", json!(1));
    let app = app_with(
        &d,
        StudioOptions {
            read_only: true,
            ..Default::default()
        },
    );
    for (method, uri, body) in [
        (Method::PUT, "/api/docs/k", "2"),
        (Method::PUT, "/api/docs/new", "2"),
        (Method::DELETE, "/api/docs/k", ""),
        (Method::POST, "/api/indexes", r#"{"field": "a"}"#),
        (Method::DELETE, "/api/indexes/a", ""),
    ] {
        let r = mutate(&app, method.clone(), uri, body);
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{method} {uri}");
        assert!(r.error().contains("read-only"));
    }
    assert_eq!(stored(&d, "k"), Some(json!(1)));
    assert_eq!(stored(&d, "new"), None);
    assert!(d.indexes().is_empty());
    assert_eq!(get(&app, "/api/docs/k").status, StatusCode::OK);
    assert_eq!(get(&app, "/api/overview").json()["studio_read_only"], true);
}

#[test]
fn read_only_studio_answers_queries() {
    // Queries, explain and find are reads (README "Ferrum Studio").
    let d = docs();
    put_json(&d, "u1", json!({"role": "admin"}));
    put_json(&d, "u2", json!({"role": "user"}));
    let app = app_with(
        &d,
        StudioOptions {
            read_only: true,
            ..Default::default()
        },
    );
    let r = mutate(
        &app,
        Method::POST,
        "/api/query",
        r#"{"filter": {"role": "admin"}}"#,
    );
    assert_eq!(
        r.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    assert_eq!(r.json()["results"], json!([["u1", {"role": "admin"}]]));
    let r = mutate(
        &app,
        Method::POST,
        "/api/explain",
        r#"{"filter": {"role": "admin"}}"#,
    );
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.json()["plan"].is_object());
    let r = mutate(
        &app,
        Method::POST,
        "/api/find",
        r#"{"field": "role", "value": "user"}"#,
    );
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["keys"], json!(["u2"]));
    // Writes are still refused, and the query routes still need the header.
    let r = mutate(&app, Method::POST, "/api/indexes", r#"{"field": "role"}"#);
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = send(
        &app,
        Request::post("/api/query")
            .body(Body::from(r#"{"filter": {}}"#))
            .unwrap(),
    );
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}

#[test]
fn editing_a_document_keeps_its_ttl_unless_changed() {
    let clock = ferrumdb::Clock::manual(1_800_000_000_000);
    let d = Documents::open(
        Database::open(&Config::new().in_memory().with_clock(clock.clone())).unwrap(),
    )
    .unwrap();
    let app = app(&d);
    d.database()
        .put_raw_with_ttl("s", b"1", std::time::Duration::from_secs(100))
        .unwrap();
    clock.advance_ms(40_000);
    // A plain edit keeps the very same deadline.
    let r = mutate(&app, Method::PUT, "/api/docs/s", "2");
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["ttl"], json!(60.0));
    assert_eq!(d.database().ttl("s").unwrap(), Some(Some(60.0)));
    assert_eq!(get(&app, "/api/docs/s").json()["ttl"], json!(60.0));
    assert_eq!(stored(&d, "s"), Some(json!(2)));
    // ?ttl=SECONDS sets a new one, ?ttl=none clears it.
    let r = mutate(&app, Method::PUT, "/api/docs/s?ttl=5.5", "3");
    assert_eq!(r.json()["ttl"], json!(5.5));
    assert_eq!(d.database().ttl("s").unwrap(), Some(Some(5.5)));
    let r = mutate(&app, Method::PUT, "/api/docs/s?ttl=none", "4");
    assert_eq!(r.json()["ttl"], Value::Null);
    assert_eq!(d.database().ttl("s").unwrap(), Some(None));
    // An edit of a key without TTL keeps it without one; a new key has none.
    mutate(&app, Method::PUT, "/api/docs/s", "5");
    assert_eq!(d.database().ttl("s").unwrap(), Some(None));
    let r = mutate(&app, Method::PUT, "/api/docs/new", "1");
    assert_eq!(r.json()["created"], true);
    assert_eq!(d.database().ttl("new").unwrap(), Some(None));
    // The kept deadline still expires the key.
    mutate(&app, Method::PUT, "/api/docs/e?ttl=1", "1");
    mutate(&app, Method::PUT, "/api/docs/e", "2");
    clock.advance_ms(1000);
    assert_eq!(stored(&d, "e"), None);
    // A bad ttl is a 400 that stores nothing.
    for bad in ["0", "-1", "soon", "inf", "NaN"] {
        let r = mutate(&app, Method::PUT, &format!("/api/docs/s?ttl={bad}"), "9");
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}");
        assert!(r.error().contains("ttl"), "{bad}");
    }
    assert_eq!(stored(&d, "s"), Some(json!(5)));
}

#[test]
fn read_only_database_is_403_on_write() {
    let (_dir, path) = crate::temp_db();
    crate::open(&path).close().unwrap();
    let ro = Documents::open(crate::open_ro(&path)).unwrap();
    let r = mutate(&app(&ro), Method::PUT, "/api/docs/k", "1");
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(!r.error().is_empty());
}

/// A raw HTTP/1.1 request to a running Studio: (status, body).
fn http(addr: std::net::SocketAddr, request: &str) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect(addr)?;
    stream.write_all(request.as_bytes())?;
    let mut text = String::new();
    stream.read_to_string(&mut text)?;
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_string();
    Ok((status, body))
}

fn http_get(addr: std::net::SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    http(
        addr,
        &format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"),
    )
}

#[test]
fn studio_serves_over_tcp_and_stops() {
    let d = docs();
    put_json(&d, "k", json!({"v": 1}));
    let studio = Studio::start(
        d.clone(),
        StudioOptions {
            port: 0,
            ..Default::default()
        },
    )
    .unwrap();
    let addr = studio.local_addr();
    assert_ne!(addr.port(), 0);
    assert_eq!(studio.url(), format!("http://127.0.0.1:{}/", addr.port()));
    let (status, body) = http_get(addr, "/api/docs/k").unwrap();
    assert_eq!(status, 200);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["value"],
        json!({"v": 1})
    );
    // Garbage on the wire is a 400, and the server lives on. Like every
    // Studio error, it has a JSON body, even though hyper answers it.
    let (status, body) = http(addr, "NONSENSE\r\n\r\n").unwrap();
    assert_eq!(status, 400);
    let v: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body:?}"));
    assert!(v["error"].is_string(), "{v}");
    // So is a 414 for a URI over 64 KiB (a key Studio cannot open).
    let long = format!("/api/docs/{}", "k".repeat(70_000));
    let (status, body) = http_get(addr, &long).unwrap();
    assert_eq!(status, 414);
    let v: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body:?}"));
    assert!(v["error"].as_str().unwrap().contains("64 KiB"), "{v}");
    assert_eq!(http_get(addr, "/api/stats").unwrap().0, 200);
    // The port is taken while it runs.
    let second = Studio::start(
        d.clone(),
        StudioOptions {
            port: addr.port(),
            ..Default::default()
        },
    );
    match second {
        Err(StudioError::Bind { source, .. }) => {
            assert_eq!(source.kind(), std::io::ErrorKind::AddrInUse)
        }
        other => panic!("expected a bind error, got {other:?}"),
    }
    studio.stop();
    assert!(
        TcpStream::connect(addr).is_err(),
        "stopped Studio still accepts"
    );
    // The database is untouched by Studio stopping.
    assert_eq!(stored(&d, "k"), Some(json!({"v": 1})));
}

#[test]
fn dropping_studio_stops_it() {
    let d = docs();
    let studio = Studio::start(
        d,
        StudioOptions {
            port: 0,
            ..Default::default()
        },
    )
    .unwrap();
    let addr = studio.local_addr();
    assert_eq!(http_get(addr, "/").unwrap().0, 200);
    drop(studio);
    assert!(TcpStream::connect(addr).is_err());
}

#[test]
fn non_loopback_needs_a_token() {
    let d = docs();
    let r = Studio::start(
        d.clone(),
        StudioOptions {
            host: "0.0.0.0".into(),
            port: 0,
            ..Default::default()
        },
    );
    assert!(matches!(r, Err(StudioError::TokenRequired { .. })), "{r:?}");
    let r = Studio::start(
        d.clone(),
        StudioOptions {
            port: 0,
            token: Some(String::new()),
            ..Default::default()
        },
    );
    assert!(matches!(r, Err(StudioError::InvalidOptions(_))), "{r:?}");
    // With a token it binds, and the URL carries the token.
    let studio = Studio::start(
        d,
        StudioOptions {
            host: "0.0.0.0".into(),
            port: 0,
            token: Some("a b".into()),
            ..Default::default()
        },
    )
    .unwrap();
    assert!(studio.url().ends_with("/?token=a%20b"), "{}", studio.url());
}

/// Studio on a free loopback port with short connection limits.
fn start_limited(d: &Documents, limits: ferrumdb::server::ConnectionLimits) -> Studio {
    let options = StudioOptions {
        port: 0,
        ..Default::default()
    };
    Studio::start_with_limits(d.clone(), options, limits).unwrap()
}

/// The child half of `half_sent_connections_neither_block_studio_nor_starve_the_database`:
/// runs only when that test starts this binary with `FERRUM_STUDIO_FD_CHILD`
/// set to a directory. It serves Studio under a low descriptor limit
/// (RLIMIT_NOFILE = 128), then on "go" runs compact, backup and export and
/// reports each on stdout as `CHILD <step> ok` or `CHILD <step> err <error>`.
#[test]
fn studio_fd_limit_child() {
    use std::io::BufRead;
    let Some(dir) = std::env::var_os("FERRUM_STUDIO_FD_CHILD") else {
        return;
    };
    let dir = std::path::PathBuf::from(dir);
    let limit = libc::rlimit {
        rlim_cur: 128,
        rlim_max: 128,
    };
    // SAFETY: setrlimit reads the struct we pass and nothing else.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) }, 0);
    let db = crate::open(&dir.join("test.db"));
    for i in 0..100 {
        db.put_raw(&format!("k{i}"), crate::json(i).as_bytes())
            .unwrap();
    }
    let d = Documents::open(db).unwrap();
    let studio = start_limited(
        &d,
        ferrumdb::server::ConnectionLimits {
            header_read_timeout: std::time::Duration::from_millis(300),
            body_read_timeout: std::time::Duration::from_millis(300),
            max_connections: 16,
        },
    );
    println!("CHILD port {}", studio.local_addr().port());
    let mut stdin = std::io::stdin().lock();
    let mut line = String::new();
    stdin.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "go");
    let report = |step: &str, r: ferrumdb::Result<()>| match r {
        Ok(()) => println!("CHILD {step} ok"),
        Err(e) => println!("CHILD {step} err {e}"),
    };
    let db = d.database();
    report("compact", db.compact());
    report("backup", db.backup(&dir.join("backup.db")).map(drop));
    report(
        "export",
        ferrumdb::ops::export_jsonl(db, &dir.join("out.jsonl"), "", &mut |_, _, _| {}).map(drop),
    );
    println!("CHILD done");
    // Serve on until the parent closes our stdin.
    line.clear();
    let _ = stdin.read_line(&mut line);
    studio.stop();
}

/// Kills and reaps a child process when the test ends, however it ends.
struct ChildGuard(std::process::Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Class 9 of issue 10: 140 half-sent requests from a local process made an
/// old Studio accept until the process ran out of descriptors (EMFILE), and
/// compaction, backup and export then failed. Now at most
/// `max_connections` are served at once, the rest wait in the accept queue,
/// and a connection that does not finish its request head in time is closed.
#[test]
fn half_sent_connections_neither_block_studio_nor_starve_the_database() {
    use std::io::BufRead;
    use std::process::{Command, Stdio};
    let dir = tempfile::tempdir().unwrap();
    let child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "studio_api::studio_fd_limit_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("FERRUM_STUDIO_FD_CHILD", dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = ChildGuard(child);
    let mut out = std::io::BufReader::new(child.0.stdout.take().unwrap());
    let mut next_line = || {
        let mut line = String::new();
        loop {
            line.clear();
            assert_ne!(out.read_line(&mut line).unwrap(), 0, "child ended early");
            // libtest may print "test NAME ... " on the same line first.
            if let Some((_, rest)) = line.trim().split_once("CHILD ") {
                return rest.to_string();
            }
        }
    };
    let port: u16 = next_line().strip_prefix("port ").unwrap().parse().unwrap();
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    // More half-sent requests than the child has descriptors, but fewer than
    // the cap plus the listen backlog (128), so every connect completes.
    let mut half_sent = Vec::new();
    for _ in 0..140 {
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(b"GET /api/stats HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            .unwrap();
        half_sent.push(s);
    }
    let mut stdin = child.0.stdin.take().unwrap();
    stdin.write_all(b"go\n").unwrap();
    for step in ["compact", "backup", "export"] {
        assert_eq!(next_line(), format!("{step} ok"));
    }
    assert_eq!(next_line(), "done");
    // A normal request is answered once the half-sent ones are timed out.
    // (The read timeout is only a guard against hanging forever.)
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(120)))
        .unwrap();
    s.write_all(b"GET /api/stats HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).expect("Studio answers");
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    // Every half-sent connection was closed by the server (EOF), at most
    // after a 408 reply whose body is JSON.
    for mut s in half_sent {
        s.set_read_timeout(Some(std::time::Duration::from_secs(120)))
            .unwrap();
        let mut reply = Vec::new();
        s.read_to_end(&mut reply)
            .expect("the server closes a half-sent connection");
        let reply = String::from_utf8_lossy(&reply);
        if !reply.is_empty() {
            assert!(reply.starts_with("HTTP/1.1 408"), "{reply}");
            let body = reply.split_once("\r\n\r\n").map_or("", |(_, b)| b);
            let v: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {reply}"));
            assert!(v["error"].is_string(), "{reply}");
        }
    }
    drop(stdin);
    assert!(child.0.wait().unwrap().success());
}

/// A request whose body stalls is answered with a JSON 4xx and the
/// connection closed, instead of holding one of Studio's connections forever.
#[test]
fn stalled_request_body_is_cut_off() {
    let d = docs();
    let studio = start_limited(
        &d,
        ferrumdb::server::ConnectionLimits {
            body_read_timeout: std::time::Duration::from_millis(200),
            ..Default::default()
        },
    );
    let mut s = TcpStream::connect(studio.local_addr()).unwrap();
    // The read timeout only guards against hanging forever.
    s.set_read_timeout(Some(std::time::Duration::from_secs(120)))
        .unwrap();
    s.write_all(
        b"PUT /api/docs/k HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Ferrum-Studio: 1\r\n\
          Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"a\": ",
    )
    .unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply)
        .expect("Studio answers and closes");
    assert!(reply.starts_with("HTTP/1.1 4"), "{reply}");
    let body = reply.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    let v: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {reply}"));
    assert!(v["error"].is_string(), "{reply}");
    assert_eq!(stored(&d, "k"), None);
    studio.stop();
}
