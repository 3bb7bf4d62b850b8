//! Open311 GeoReport v2 end to end, on SQLite and on PostgreSQL: the real `wangge`
//! binary with the real 金水区 grids on loopback, keys made with `wangge apikey`, a
//! client that posts form-encoded requests and reads every answer in JSON and in XML
//! (the XML parsed with quick-xml). Refusals are the spec's error array with its
//! statuses; no GET ever carries the reporter's personal data.

use serde_json::{Value, json};
use wangge_sync_core::case::Status;
use wangge_tests::phone::Phone;
use wangge_tests::places::{JINSHUI, import_grids, two_places};
use wangge_tests::{Server, databases, http, wangge_ok};

/// An XML element as parsed: name, text, children.
#[derive(Debug, Clone, Default)]
struct Element {
    name: String,
    text: String,
    children: Vec<Element>,
}

impl Element {
    /// The first child named `name`.
    fn child(&self, name: &str) -> &Element {
        self.children
            .iter()
            .find(|c| c.name == name)
            .unwrap_or_else(|| panic!("<{}> has no <{name}>: {self:?}", self.name))
    }

    /// The children named `name`.
    fn all(&self, name: &str) -> Vec<&Element> {
        self.children.iter().filter(|c| c.name == name).collect()
    }

    /// The text of the child `name`.
    fn text_of(&self, name: &str) -> &str {
        &self.child(name).text
    }
}

/// Parses an XML document with quick-xml (the declaration is checked too).
fn parse_xml(text: &str) -> Element {
    use quick_xml::events::Event;
    assert!(
        text.starts_with("<?xml version=\"1.0\" encoding=\"utf-8\"?>"),
        "no UTF-8 declaration: {text}"
    );
    let mut reader = quick_xml::Reader::from_str(text);
    let mut stack: Vec<Element> = vec![Element::default()];
    loop {
        match reader.read_event().expect("well-formed XML") {
            Event::Start(start) => stack.push(Element {
                name: AsRef::<str>::as_ref(&start.name()).to_owned(),
                ..Element::default()
            }),
            Event::Empty(empty) => {
                let element = Element {
                    name: AsRef::<str>::as_ref(&empty.name()).to_owned(),
                    ..Element::default()
                };
                stack.last_mut().expect("parent").children.push(element);
            }
            // Text comes without its references, which are events of their own.
            Event::Text(text) => {
                let text = text.into_inner();
                stack.last_mut().expect("element").text.push_str(&text);
            }
            Event::GeneralRef(reference) => {
                let resolved = if reference.is_char_ref() {
                    reference
                        .resolve_char_ref()
                        .expect("a character reference")
                        .expect("a character")
                        .to_string()
                } else {
                    let name = reference.into_inner();
                    quick_xml::escape::unescape(&format!("&{name};"))
                        .expect("a predefined entity")
                        .into_owned()
                };
                stack.last_mut().expect("element").text.push_str(&resolved);
            }
            Event::End(_) => {
                let mut done = stack.pop().expect("open element");
                if !done.children.is_empty() {
                    done.text.clear(); // the indentation between elements
                }
                stack.last_mut().expect("parent").children.push(done);
            }
            Event::Eof => break,
            _ => {}
        }
    }
    let mut document = stack.pop().expect("document");
    assert_eq!(document.children.len(), 1, "one root element");
    document.children.remove(0)
}

/// A GET: status, `Content-Type`, body text.
fn get(server: &Server, path: &str) -> (u16, String, String) {
    let mut response = http()
        .get(server.url(path))
        .call()
        .expect("the request reaches the server");
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let body = response.body_mut().read_to_string().expect("body");
    (status, content_type, body)
}

fn get_json(server: &Server, path: &str) -> (u16, Value) {
    let (status, content_type, body) = get(server, path);
    assert_eq!(content_type, "application/json; charset=utf-8", "{path}");
    (status, serde_json::from_str(&body).expect("JSON"))
}

fn get_xml(server: &Server, path: &str) -> (u16, Element) {
    let (status, content_type, body) = get(server, path);
    assert_eq!(content_type, "text/xml; charset=utf-8", "{path}");
    (status, parse_xml(&body))
}

/// A form-encoded POST: status, `Retry-After`, body text.
fn post(server: &Server, path: &str, form: &[(&str, &str)]) -> (u16, Option<String>, String) {
    let mut response = http()
        .post(server.url(path))
        .send_form(form.iter().copied())
        .expect("the request reaches the server");
    let status = response.status().as_u16();
    let retry = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = response.body_mut().read_to_string().expect("body");
    (status, retry, body)
}

fn post_json(server: &Server, form: &[(&str, &str)]) -> (u16, Value) {
    let (status, _, body) = post(server, "/open311/v2/requests.json", form);
    (status, serde_json::from_str(&body).expect("JSON"))
}

/// The spec's error array with one error of `status`.
#[track_caller]
fn assert_error(body: &Value, status: u16) {
    let errors = body.as_array().expect("an error array");
    assert_eq!(errors.len(), 1, "{body}");
    assert_eq!(errors[0]["code"], Value::from(status), "{body}");
    assert!(
        errors[0]["description"]
            .as_str()
            .is_some_and(|d| !d.is_empty()),
        "{body}"
    );
}

/// `wangge apikey add`: the key (printed once) and its id (from `apikey list`).
fn add_key(url: &str, name: &str, rate: Option<&str>) -> (String, String) {
    let mut args = vec!["apikey", "add", "--database", url, "--name", name];
    if let Some(rate) = rate {
        args.extend(["--rate-per-minute", rate]);
    }
    let key = wangge_ok(&args, "").trim().to_owned();
    assert_eq!(key.len(), 64, "{key}");
    let list = wangge_ok(&["apikey", "list", "--database", url], "");
    assert!(!list.contains(&key), "the key is never listed: {list}");
    let id = list
        .lines()
        .find(|l| l.split('\t').nth(1) == Some(name))
        .and_then(|l| l.split('\t').next())
        .expect("the key is listed")
        .to_owned();
    (key, id)
}

/// A status as `status_notes` gives it: Chinese, then English.
fn label(status: Status) -> String {
    format!("{} {}", status.name_zh(), status.name_en())
}

const EMAIL: &str = "li.xiaoming@example.com";
const PHONE: &str = "13912345678";
const FIRST: &str = "小明";
const LAST: &str = "李某某";

#[test]
fn an_open311_client_posts_and_follows_its_request_on_every_backend() {
    let [(grid, position), _] = two_places();
    let (lat, long) = (position.lat.to_string(), position.lon.to_string());
    for database in databases() {
        let url = &database.url;
        let backend = database.backend;
        import_grids(url);
        let (key, _) = add_key(url, "市民通 app", None);
        let (limited, _) = add_key(url, "portal", Some("2"));
        let (revoked, revoked_id) = add_key(url, "old app", None);
        wangge_ok(
            &["apikey", "revoke", "--database", url, "--id", &revoked_id],
            "",
        );
        let list = wangge_ok(&["apikey", "list", "--database", url], "");
        assert!(list.contains("revoked") && list.contains("2/min"), "{list}");
        let server = Server::start(url, &[]);

        // Discovery, in both formats.
        let (status, discovery) = get_json(&server, "/open311/v2/discovery.json");
        assert_eq!(status, 200, "{backend}");
        let endpoint = &discovery["endpoints"][0];
        assert_eq!(
            endpoint["specification"],
            "http://wiki.open311.org/GeoReport_v2"
        );
        assert_eq!(endpoint["type"], "production");
        assert!(
            endpoint["url"]
                .as_str()
                .expect("url")
                .ends_with("/open311/v2")
        );
        let formats = endpoint["formats"].as_array().expect("formats");
        assert!(
            formats.contains(&Value::from("text/xml"))
                && formats.contains(&Value::from("application/json"))
        );
        let (status, xml) = get_xml(&server, "/open311/v2/discovery.xml");
        assert_eq!((status, xml.name.as_str()), (200, "discovery"));
        let endpoint = xml.child("endpoints").child("endpoint");
        assert_eq!(
            endpoint.text_of("specification"),
            "http://wiki.open311.org/GeoReport_v2"
        );
        assert_eq!(endpoint.child("formats").all("format").len(), 2);
        assert_eq!(
            xml.text_of("changeset"),
            discovery["changeset"].as_str().expect("changeset")
        );

        // The catalogue's categories as services.
        let (status, services) = get_json(&server, "/open311/v2/services.json");
        assert_eq!(status, 200);
        let services = services.as_array().expect("services").clone();
        assert!(services.len() > 50, "{}", services.len());
        let cover = services
            .iter()
            .find(|s| s["service_code"] == "C0101")
            .expect("C0101 上水井盖");
        assert!(
            cover["service_name"]
                .as_str()
                .expect("name")
                .starts_with("上水井盖 "),
            "{cover}"
        );
        assert_eq!(cover["type"], "realtime");
        assert_eq!(cover["metadata"], false);
        assert!(
            cover["group"].as_str().expect("group").contains("公用设施"),
            "{cover}"
        );
        assert!(cover["keywords"].is_string());
        let (_, xml) = get_xml(&server, "/open311/v2/services.xml");
        assert_eq!(xml.name, "services");
        let listed = xml.all("service");
        assert_eq!(listed.len(), services.len());
        let cover_xml = listed
            .iter()
            .find(|s| s.text_of("service_code") == "C0101")
            .expect("C0101 in XML");
        assert_eq!(
            cover_xml.text_of("service_name"),
            cover["service_name"].as_str().expect("name")
        );
        assert_eq!(cover_xml.text_of("metadata"), "false");
        assert_eq!(
            cover_xml.text_of("group"),
            cover["group"].as_str().expect("group")
        );
        let (status, definition) = get_json(&server, "/open311/v2/services/C0101.json");
        assert_eq!(status, 200);
        assert_eq!(definition["service_code"], "C0101");
        assert_eq!(definition["attributes"], Value::Array(Vec::new()));
        let (status, xml) = get_xml(&server, "/open311/v2/services/C0101.xml");
        assert_eq!((status, xml.name.as_str()), (200, "service_definition"));
        assert_eq!(xml.text_of("service_code"), "C0101");
        let (status, error) = get_json(&server, "/open311/v2/services/C9999.json");
        assert_eq!(status, 404);
        assert_error(&error, 404);
        let (status, xml) = get_xml(&server, "/open311/v2/services/C9999.xml");
        assert_eq!((status, xml.name.as_str()), (404, "errors"));
        assert_eq!(xml.child("error").text_of("code"), "404");
        let (status, _, _) = get(&server, "/open311/v2/services/C0101.csv");
        assert_eq!(status, 404);

        // Refused posts: each the spec's error array, and nothing created.
        let good: Vec<(&str, &str)> = vec![
            ("api_key", key.as_str()),
            ("jurisdiction_id", "zhengzhou.gov.cn"),
            ("service_code", "C0101"),
            ("lat", &lat),
            ("long", &long),
            ("address_string", "金水区 花园路 1 号"),
            ("description", "上水井盖破损，有塌陷危险"),
            ("media_url", "https://img.example.com/p/1.jpg"),
            ("email", EMAIL),
            ("phone", PHONE),
            ("first_name", FIRST),
            ("last_name", LAST),
            ("device_id", "device-1"),
            ("account_id", "acct-9"),
        ];
        let with = |changes: &[(&'static str, Option<&'static str>)]| -> Vec<(&str, String)> {
            let mut form: Vec<(&str, String)> =
                good.iter().map(|(k, v)| (*k, (*v).to_owned())).collect();
            for (name, value) in changes {
                form.retain(|(k, _)| k != name);
                if let Some(value) = value {
                    form.push((name, (*value).to_owned()));
                }
            }
            form
        };
        let post_form = |form: &[(&str, String)]| -> (u16, Value) {
            let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            post_json(&server, &pairs)
        };
        for (what, form, status) in [
            ("no api_key", with(&[("api_key", None)]), 403),
            (
                "a bad api_key",
                with(&[("api_key", Some("0123456789abcdef"))]),
                403,
            ),
            ("no service_code", with(&[("service_code", None)]), 400),
            (
                "an unknown service_code",
                with(&[("service_code", Some("C9999"))]),
                404,
            ),
            (
                "no location",
                with(&[("lat", None), ("long", None), ("address_string", None)]),
                400,
            ),
            (
                "an address only (no geocoder)",
                with(&[("lat", None), ("long", None)]),
                400,
            ),
            ("lat without long", with(&[("long", None)]), 400),
            (
                "a point outside every grid (Beijing)",
                with(&[("lat", Some("39.9087")), ("long", Some("116.3975"))]),
                400,
            ),
            ("a latitude beyond 90", with(&[("lat", Some("91"))]), 400),
            (
                "a media_url that is no web address",
                with(&[("media_url", Some("file:///etc/passwd"))]),
                400,
            ),
        ] {
            let (got, body) = post_form(&form);
            assert_eq!(got, status, "{backend}: {what}: {body}");
            assert_error(&body, status);
        }
        let long_text = "坏".repeat(4001);
        let mut too_long = with(&[]);
        too_long.retain(|(k, _)| *k != "description");
        too_long.push(("description", long_text));
        let (status, body) = post_form(&too_long);
        assert_eq!(status, 400, "{body}");
        let revoked_form = {
            let mut form = with(&[]);
            form.retain(|(k, _)| *k != "api_key");
            form.push(("api_key", revoked.clone()));
            form
        };
        let (status, body) = post_form(&revoked_form);
        assert_eq!(status, 403, "a revoked key: {body}");
        assert_error(&body, 403);
        // In XML too.
        let (status, _, text) = post(
            &server,
            "/open311/v2/requests.xml",
            &[("service_code", "C0101")],
        );
        assert_eq!(status, 403);
        let xml = parse_xml(&text);
        assert_eq!(xml.name, "errors");
        assert_eq!(xml.child("error").text_of("code"), "403");
        // Not a form: 400 in the spec's shape (after the key: none here, so 403 first).
        let response = http()
            .post(server.url("/open311/v2/requests.json"))
            .header("Content-Type", "application/json")
            .send("{}")
            .expect("reaches the server");
        assert_eq!(response.status().as_u16(), 400);
        let (status, body) = get_json(&server, "/open311/v2/requests.json");
        assert_eq!(
            (status, body),
            (200, Value::Array(Vec::new())),
            "{backend}: nothing created"
        );

        // A good post: the id and the token.
        let (status, created) = post_form(&with(&[]));
        assert_eq!(status, 200, "{backend}: {created}");
        let created = &created[0];
        let id = created["service_request_id"]
            .as_str()
            .expect("id")
            .to_owned();
        let token = created["token"].as_str().expect("token").to_owned();
        assert_eq!(created["account_id"], "acct-9");
        let (status, _, text) = post(
            &server,
            "/open311/v2/requests.xml",
            &[
                ("api_key", key.as_str()),
                ("service_code", "E0102"),
                ("lat", lat.as_str()),
                ("long", long.as_str()),
                ("description", "垃圾 <暴露> & 未清运"),
            ],
        );
        assert_eq!(status, 200, "{text}");
        let xml = parse_xml(&text);
        assert_eq!(xml.name, "service_requests");
        let second = xml
            .child("request")
            .text_of("service_request_id")
            .to_owned();
        let second_token = xml.child("request").text_of("token").to_owned();
        assert!(!second.is_empty() && second != id);

        // The token leads to the id, in both formats; an unknown one is 404.
        let (status, body) = get_json(&server, &format!("/open311/v2/tokens/{token}.json"));
        assert_eq!(status, 200);
        assert_eq!(body[0]["service_request_id"], Value::from(id.clone()));
        assert_eq!(body[0]["token"], Value::from(token.clone()));
        let (_, xml) = get_xml(&server, &format!("/open311/v2/tokens/{second_token}.xml"));
        assert_eq!(xml.child("request").text_of("service_request_id"), second);
        let (status, body) = get_json(&server, "/open311/v2/tokens/nope.json");
        assert_eq!(status, 404);
        assert_error(&body, 404);

        // The request: open, where and what it is, in both formats.
        let (status, body) = get_json(&server, &format!("/open311/v2/requests/{id}.json"));
        assert_eq!(status, 200, "{body}");
        let request = &body[0];
        assert_eq!(request["service_request_id"], Value::from(id.clone()));
        assert_eq!(request["status"], "open", "{request}");
        let notes = request["status_notes"].as_str().expect("notes");
        assert!(
            Status::ALL
                .into_iter()
                .filter(|s| !matches!(s, Status::Closed | Status::Voided))
                .any(|s| notes == label(s)),
            "an open status in Chinese and English: {request}"
        );
        assert_eq!(request["service_code"], "C0101");
        assert!(
            request["service_name"]
                .as_str()
                .expect("name")
                .starts_with("上水井盖")
        );
        assert!(
            request["description"]
                .as_str()
                .expect("description")
                .starts_with("上水井盖破损")
        );
        assert_eq!(request["address"], "金水区 花园路 1 号");
        assert_eq!(request["media_url"], "https://img.example.com/p/1.jpg");
        assert!((request["lat"].as_f64().expect("lat") - position.lat).abs() < 1e-9);
        assert!((request["long"].as_f64().expect("long") - position.lon).abs() < 1e-9);
        let requested = request["requested_datetime"].as_str().expect("date");
        assert!(
            requested.ends_with("+08:00") && requested.len() == 25,
            "{requested}"
        );
        assert!(chrono::DateTime::parse_from_rfc3339(requested).is_ok());
        let (status, xml) = get_xml(&server, &format!("/open311/v2/requests/{second}.xml"));
        assert_eq!((status, xml.name.as_str()), (200, "service_requests"));
        let request_xml = xml.child("request");
        assert_eq!(request_xml.text_of("status"), "open");
        assert_eq!(request_xml.text_of("service_code"), "E0102");
        assert_eq!(request_xml.text_of("description"), "垃圾 <暴露> & 未清运");
        assert_eq!(request_xml.child("media_url").text, "");
        assert!(request_xml.text_of("lat").parse::<f64>().is_ok());
        let (status, body) = get_json(
            &server,
            "/open311/v2/requests/0193f0a0-0000-7000-8000-000000000000.json",
        );
        assert_eq!(status, 404);
        assert_error(&body, 404);
        let _ = grid;

        // GET requests and its filters.
        let ids = |path: &str| -> Vec<String> {
            let (status, body) = get_json(&server, path);
            assert_eq!(status, 200, "{path}: {body}");
            body.as_array()
                .expect("requests")
                .iter()
                .map(|r| r["service_request_id"].as_str().expect("id").to_owned())
                .collect()
        };
        let both = vec![second.clone(), id.clone()];
        assert_eq!(ids("/open311/v2/requests.json"), both, "newest first");
        assert_eq!(ids("/open311/v2/requests.json?status=open"), both);
        assert_eq!(ids("/open311/v2/requests.json?status=open,closed"), both);
        assert!(ids("/open311/v2/requests.json?status=closed").is_empty());
        assert_eq!(
            ids("/open311/v2/requests.json?service_code=C0101"),
            vec![id.clone()]
        );
        assert_eq!(
            ids("/open311/v2/requests.json?service_code=C0101,E0102"),
            both
        );
        assert!(ids("/open311/v2/requests.json?service_code=C0102").is_empty());
        assert_eq!(
            ids(&format!(
                "/open311/v2/requests.json?service_request_id={id},nope&status=closed"
            )),
            vec![id.clone()],
            "ids override the other arguments"
        );
        assert_eq!(
            ids("/open311/v2/requests.json?page_size=1"),
            vec![second.clone()]
        );
        assert_eq!(
            ids("/open311/v2/requests.json?page_size=1&page=2"),
            vec![id.clone()]
        );
        assert!(ids("/open311/v2/requests.json?page_size=1&page=3").is_empty());
        let now = chrono::DateTime::from_timestamp_millis(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .expect("after 1970")
                .as_millis() as i64,
        )
        .expect("now");
        let at = |t: chrono::DateTime<chrono::Utc>| {
            t.with_timezone(&chrono::FixedOffset::east_opt(8 * 3600).expect("+08:00"))
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                .replace('+', "%2B")
        };
        let hour = chrono::Duration::hours(1);
        assert_eq!(
            ids(&format!(
                "/open311/v2/requests.json?start_date={}&end_date={}",
                at(now - hour),
                at(now + hour)
            )),
            both
        );
        assert!(
            ids(&format!(
                "/open311/v2/requests.json?start_date={}",
                at(now + hour)
            ))
            .is_empty()
        );
        assert!(
            ids(&format!(
                "/open311/v2/requests.json?end_date={}",
                at(now - hour)
            ))
            .is_empty()
        );
        // A `+` left unencoded arrives as a space: still understood.
        let plain = at(now - hour).replace("%2B", "+");
        assert_eq!(
            ids(&format!("/open311/v2/requests.json?start_date={plain}")),
            both
        );
        let (_, xml) = get_xml(&server, "/open311/v2/requests.xml?service_code=E0102");
        assert_eq!(xml.all("request").len(), 1);
        for (query, what) in [
            ("status=pending", "a status that is not open or closed"),
            ("start_date=yesterday", "a date that is not W3C"),
            ("page_size=0", "page_size 0"),
            ("page_size=1001", "page_size over 1000"),
            ("page=x", "a page that is no number"),
        ] {
            let (status, body) = get_json(&server, &format!("/open311/v2/requests.json?{query}"));
            assert_eq!(status, 400, "{what}: {body}");
            assert_error(&body, 400);
        }
        let (status, body) = get_json(
            &server,
            &format!(
                "/open311/v2/requests.json?start_date={}&end_date={}",
                at(now - chrono::Duration::days(100)),
                at(now)
            ),
        );
        assert_eq!(status, 400, "more than 90 days: {body}");

        // No personal data in any answer a GET gives.
        for path in [
            "/open311/v2/requests.json".to_owned(),
            "/open311/v2/requests.xml".to_owned(),
            format!("/open311/v2/requests/{id}.json"),
            format!("/open311/v2/requests/{id}.xml"),
            format!("/open311/v2/tokens/{token}.json"),
            format!("/open311/v2/tokens/{token}.xml"),
        ] {
            let (status, _, text) = get(&server, &path);
            assert_eq!(status, 200, "{path}");
            for private in [
                EMAIL,
                PHONE,
                FIRST,
                LAST,
                "device-1",
                "acct-9",
                "reporter",
                "server",
                key.as_str(),
            ] {
                assert!(
                    !text.contains(private),
                    "{backend}: {path} shows {private:?}: {text}"
                );
            }
        }

        // The per-key rate: 2 a minute, then 429 in the spec's shape, with Retry-After.
        let limited_form: Vec<(&str, &str)> = vec![
            ("api_key", limited.as_str()),
            ("service_code", "E0102"),
            ("lat", lat.as_str()),
            ("long", long.as_str()),
        ];
        for _ in 0..2 {
            let (status, body) = post_json(&server, &limited_form);
            assert_eq!(status, 200, "{body}");
        }
        // Without a description, the service's name stands in.
        let (_, body) = get_json(&server, "/open311/v2/requests.json?page_size=1");
        assert!(
            body[0]["description"]
                .as_str()
                .expect("text")
                .starts_with("暴露垃圾"),
            "{body}"
        );
        let (status, retry, text) = post(&server, "/open311/v2/requests.json", &limited_form);
        assert_eq!(status, 429, "{text}");
        assert_error(&serde_json::from_str(&text).expect("JSON"), 429);
        assert!(retry.is_some_and(|s| s.parse::<u64>().is_ok_and(|s| (1..=60).contains(&s))));
        // Another key is not affected.
        let (status, _) = post_json(
            &server,
            &[
                ("api_key", key.as_str()),
                ("service_code", "E0102"),
                ("lat", lat.as_str()),
                ("long", long.as_str()),
            ],
        );
        assert_eq!(status, 200, "{backend}");
    }
}

const PASSWORD: &str = "网格-2026-ok";

/// `POST /v1/cases/{id}/actions` as `phone`.
fn act(server: &Server, phone: &Phone, id: &str, body: Value) -> (u16, Value) {
    wangge_tests::answer(
        http()
            .post(server.url(&format!("/v1/cases/{id}/actions")))
            .header("Authorization", format!("Bearer {}", phone.token))
            .send_json(body),
    )
}

/// A citizen's request followed from `open` to `closed` while the command centre and a
/// sanitation worker handle it through the API; `status_notes` says where it is.
#[test]
fn a_request_is_followed_until_it_is_closed_on_every_backend() {
    let [(grid, position), _] = two_places();
    let (lat, long) = (position.lat.to_string(), position.lon.to_string());
    let community = grid.community().to_string();
    for database in databases() {
        let url = &database.url;
        let backend = database.backend;
        import_grids(url);
        let (key, _) = add_key(url, "市民通 app", None);
        wangge_tests::add_user(
            url,
            "sweeper",
            "sanitation_worker",
            Some("sanitation"),
            &community,
            PASSWORD,
        );
        wangge_tests::add_user(
            url,
            "officer",
            "enforcement_officer",
            Some("enforcement"),
            &community,
            PASSWORD,
        );
        wangge_tests::add_user(
            url,
            "supervisor",
            "district_supervisor",
            None,
            JINSHUI,
            PASSWORD,
        );
        let server = Server::start(url, &[]);
        let supervisor = Phone::login(&server, "supervisor", PASSWORD);
        let mut sweeper = Phone::login(&server, "sweeper", PASSWORD);

        let (status, created) = post_json(
            &server,
            &[
                ("api_key", key.as_str()),
                ("service_code", "E0102"),
                ("lat", lat.as_str()),
                ("long", long.as_str()),
                ("description", "路边垃圾堆积三天无人清运"),
                ("phone", PHONE),
            ],
        );
        assert_eq!(status, 200, "{backend}: {created}");
        let id = created[0]["service_request_id"]
            .as_str()
            .expect("id")
            .to_owned();
        let request = |format: &str| -> (String, String, String) {
            let path = format!("/open311/v2/requests/{id}.{format}");
            if format == "json" {
                let (status, body) = get_json(&server, &path);
                assert_eq!(status, 200, "{body}");
                let r = &body[0];
                let text = |name: &str| r[name].as_str().unwrap_or("").to_owned();
                (
                    text("status"),
                    text("status_notes"),
                    text("agency_responsible"),
                )
            } else {
                let (status, xml) = get_xml(&server, &path);
                assert_eq!(status, 200);
                let r = xml.child("request");
                (
                    r.text_of("status").to_owned(),
                    r.text_of("status_notes").to_owned(),
                    r.text_of("agency_responsible").to_owned(),
                )
            }
        };
        let (status, notes, _) = request("json");
        assert_eq!(status, "open", "{backend}");
        assert!(!notes.is_empty());

        // A second citizen reports the same heap: the acceptor voids it as a duplicate
        // (作废, 重复); it is closed for its client, and says of which request.
        let (status, second) = post_json(
            &server,
            &[
                ("api_key", key.as_str()),
                ("service_code", "E0102"),
                ("lat", lat.as_str()),
                ("long", long.as_str()),
                ("description", "这里有一堆垃圾"),
            ],
        );
        assert_eq!(status, 200, "{backend}: {second}");
        let dup = second[0]["service_request_id"]
            .as_str()
            .expect("id")
            .to_owned();
        let (status, answer) = act(
            &server,
            &supervisor,
            &dup,
            json!({ "action": "void", "duplicate_of": id, "note": "同一处垃圾" }),
        );
        assert_eq!(status, 200, "{backend}: {answer}");
        let dup_notes = || {
            let (status, body) = get_json(&server, &format!("/open311/v2/requests/{dup}.json"));
            assert_eq!(status, 200, "{body}");
            assert_eq!(body[0]["status"], "closed", "{body}");
            body[0]["status_notes"].as_str().expect("notes").to_owned()
        };
        assert_eq!(
            dup_notes(),
            format!("{}. 重复 Duplicate of {id}", label(Status::Voided))
        );

        // The command centre and the worker take it through the workflow, from
        // wherever the server's automation left it.
        for _ in 0..8 {
            let (_, shown) = supervisor.get(&server, &format!("/v1/cases/{id}"));
            let now = shown["case"]["status"].as_str().expect("status").to_owned();
            let (who, body) = match now.as_str() {
                "reported" => (&supervisor, json!({ "action": "accept" })),
                "accepted" => (&supervisor, json!({ "action": "register" })),
                "registered" => (
                    &supervisor,
                    json!({ "action": "dispatch", "team": "sanitation", "assignee": "sweeper" }),
                ),
                "dispatched" => (&sweeper, json!({ "action": "handle", "note": "已清运" })),
                "handled" => (&supervisor, json!({ "action": "verify" })),
                "verified" => (&supervisor, json!({ "action": "close" })),
                "closed" => break,
                other => panic!("{backend}: unexpected status {other}"),
            };
            let (status, answer) = act(&server, who, &id, body.clone());
            assert_eq!(status, 200, "{backend}: {now}: {body}: {answer}");
            if now == "dispatched" {
                let (status, notes, agency) = request("xml");
                assert_eq!(status, "open");
                assert_eq!(notes, label(Status::Handled));
                assert_eq!(agency, "环卫 Sanitation");
            }
        }
        for format in ["json", "xml"] {
            let (status, notes, _) = request(format);
            assert_eq!(status, "closed", "{backend}: {format}");
            assert_eq!(notes, label(Status::Closed), "{backend}: {format}");
        }

        // The reply to the citizen (回访) becomes the request's status_notes, and the
        // duplicate's too.
        let reply = "已清运完毕，感谢您的反映 <环卫>";
        let (status, answer) = act(
            &server,
            &supervisor,
            &id,
            json!({ "action": "reply", "channel": "open311", "satisfied": true, "note": reply }),
        );
        assert_eq!(status, 200, "{backend}: {answer}");
        let replied = format!("{}. 回复 Reply: {reply}", label(Status::Closed));
        for format in ["json", "xml"] {
            let (status, notes, _) = request(format);
            assert_eq!(status, "closed", "{backend}: {format}");
            assert_eq!(notes, replied, "{backend}: {format}");
        }
        assert_eq!(
            dup_notes(),
            format!(
                "{}. 重复 Duplicate of {id}. 回复 Reply: {reply}",
                label(Status::Voided)
            )
        );
        // The citizen's phone number is in no answer, and not on the worker's phone,
        // which holds the case.
        let (_, _, text) = get(&server, "/open311/v2/requests.xml");
        assert!(!text.contains(PHONE), "{text}");
        sweeper.sync(&server);
        let saved = sweeper.case(&id).automerge().save_nocompress();
        assert!(
            !saved.windows(PHONE.len()).any(|w| w == PHONE.as_bytes()),
            "{backend}: the citizen's phone number is in the worker's document"
        );
        // A case from another source is listed without its words: the worker's (or a
        // hotline operator's) description may name the caller.
        let mut officer = Phone::login(&server, "officer", PASSWORD);
        let patrol = "0193f0a0-0000-7000-8000-00000000311a";
        officer.report(patrol, "C0102", grid, position);
        officer.sync(&server);
        let (status, body) = get_json(&server, &format!("/open311/v2/requests/{patrol}.json"));
        assert_eq!(status, 200, "{backend}: {body}");
        assert_eq!(body[0]["description"], Value::Null, "{body}");
        assert_eq!(body[0]["media_url"], Value::Null, "{body}");
        assert!(body[0]["status_notes"].is_string(), "{body}");
        let (_, _, text) = get(
            &server,
            &format!("/open311/v2/requests.xml?service_request_id={patrol},{id}"),
        );
        assert!(
            !text.contains("井盖缺失") && !text.contains("officer"),
            "{text}"
        );
        assert!(text.contains("路边垃圾堆积三天无人清运"), "{text}");
        let closed = |path: &str| {
            let (_, body) = get_json(&server, path);
            body.as_array()
                .expect("list")
                .iter()
                .any(|r| r["service_request_id"].as_str() == Some(id.as_str()))
        };
        assert!(closed("/open311/v2/requests.json?status=closed"));
        assert!(!closed("/open311/v2/requests.json?status=open"));
    }
}
