//! Self-test of the fake API server, over raw HTTP/1.1.
#![allow(clippy::unwrap_used)]

mod fake_api;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use fake_api::{FakeApi, Fault};
use serde_json::{json, Value};

struct Client {
    reader: BufReader<TcpStream>,
}

struct Resp {
    code: u16,
    headers: Vec<(String, String)>,
    body: Value,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

const AUTH: (&str, &str) = ("Authorization", "Bearer fake-token");
const APPLY: (&str, &str) = ("Content-Type", "application/apply-patch+yaml");

impl Client {
    fn connect(api: &FakeApi) -> Client {
        let addr = api.url().trim_start_matches("http://").to_string();
        let stream = TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        Client { reader: BufReader::new(stream) }
    }

    fn send(&mut self, method: &str, path: &str, headers: &[(&str, &str)], body: Option<&Value>) {
        let mut req = format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\n");
        for (n, v) in headers {
            req.push_str(&format!("{n}: {v}\r\n"));
        }
        let body = body.map(|b| serde_json::to_vec(b).unwrap()).unwrap_or_default();
        if !body.is_empty() {
            req.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        req.push_str("\r\n");
        let mut bytes = req.into_bytes();
        bytes.extend_from_slice(&body);
        self.reader.get_mut().write_all(&bytes).unwrap();
    }

    /// Reads a response's status line and headers (names lowercased); None on EOF before the
    /// status line.
    fn read_head(&mut self) -> Option<(u16, Vec<(String, String)>)> {
        let mut status = String::new();
        if self.reader.read_line(&mut status).unwrap() == 0 {
            return None;
        }
        let code: u16 = status.split_whitespace().nth(1).unwrap().parse().unwrap();
        let mut headers = Vec::new();
        loop {
            let mut line = String::new();
            self.reader.read_line(&mut line).unwrap();
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            let (n, v) = line.split_once(':').unwrap();
            headers.push((n.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
        Some((code, headers))
    }

    /// Reads one response; None on EOF before the status line.
    fn read(&mut self) -> Option<Resp> {
        let (code, headers) = self.read_head()?;
        let len: usize = headers.iter().find(|(n, _)| n == "content-length").map(|(_, v)| v.parse().unwrap()).unwrap();
        let mut body = vec![0u8; len];
        self.reader.read_exact(&mut body).unwrap();
        Some(Resp { code, headers, body: serde_json::from_slice(&body).unwrap() })
    }

    fn call(&mut self, method: &str, path: &str, headers: &[(&str, &str)], body: Option<&Value>) -> Resp {
        self.send(method, path, headers, body);
        self.read().expect("a response")
    }

    fn get(&mut self, path: &str) -> Resp {
        self.call("GET", path, &[AUTH], None)
    }

    fn apply(&mut self, path: &str, body: &Value) -> Resp {
        self.call("PATCH", &format!("{path}?fieldManager=skel&force=true"), &[AUTH, APPLY], Some(body))
    }

    /// True when the server closed the connection (EOF on read).
    fn at_eof(&mut self) -> bool {
        let mut buf = [0u8; 1];
        matches!(self.reader.read(&mut buf), Ok(0))
    }
}

fn namespace(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
}

fn deployment(ns: Option<&str>, name: &str, replicas: u32) -> Value {
    let mut d = json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {"replicas": replicas},
    });
    if let Some(ns) = ns {
        d["metadata"]["namespace"] = json!(ns);
    }
    d
}

#[test]
fn keep_alive_two_requests_on_one_connection() {
    let api = FakeApi::start("1.25");
    let mut c = Client::connect(&api);
    let first = c.get("/version");
    assert_eq!(first.code, 200);
    assert_eq!(first.header("content-type"), Some("application/json"));
    assert_eq!(first.body["minor"], "25");
    assert_eq!(first.body["gitVersion"], "v1.25.0");
    let second = c.get("/api");
    assert_eq!(second.code, 200);
    assert_eq!(second.body["versions"], json!(["v1"]));
    // Connection: close is honoured.
    let third = c.call("GET", "/version", &[AUTH, ("Connection", "close")], None);
    assert_eq!(third.code, 200);
    assert_eq!(third.header("connection"), Some("close"));
    assert!(c.at_eof());
    assert_eq!(api.request_lines(), ["GET /version", "GET /api", "GET /version"]);
}

#[test]
fn chunked_request_body() {
    let api = FakeApi::start("1.25");
    let mut c = Client::connect(&api);
    let body = serde_json::to_string(&namespace("chunky")).unwrap();
    let (a, b) = body.split_at(10);
    let req = format!(
        "PATCH /api/v1/namespaces/chunky?fieldManager=skel HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer fake-token\r\n\
         Content-Type: application/apply-patch+yaml\r\nTransfer-Encoding: chunked\r\n\r\n\
         {:x}\r\n{a}\r\n{:x};ext=1\r\n{b}\r\n0\r\n\r\n",
        a.len(),
        b.len()
    );
    c.reader.get_mut().write_all(req.as_bytes()).unwrap();
    let resp = c.read().unwrap();
    assert_eq!(resp.code, 201, "{}", resp.body);
    // The connection is still usable afterwards.
    assert_eq!(c.get("/api/v1/namespaces/chunky").code, 200);
    assert_eq!(api.requests()[0].body, Some(namespace("chunky")));
}

#[test]
fn discovery_depends_on_version() {
    let old = FakeApi::start("1.21");
    let new = FakeApi::start("1.25");
    let mut co = Client::connect(&old);
    let mut cn = Client::connect(&new);

    let r = co.get("/apis/batch/v1beta1");
    assert_eq!(r.code, 200);
    assert_eq!(r.body["kind"], "APIResourceList");
    assert_eq!(r.body["groupVersion"], "batch/v1beta1");
    assert_eq!(r.body["resources"][0]["name"], "cronjobs");
    assert_eq!(r.body["resources"][0]["kind"], "CronJob");
    assert_eq!(r.body["resources"][0]["namespaced"], true);
    let r = cn.get("/apis/batch/v1beta1");
    assert_eq!(r.code, 404);
    assert_eq!(r.body["reason"], "NotFound");

    let batch_versions = |list: &Value| -> Vec<String> {
        let g = list["groups"].as_array().unwrap().iter().find(|g| g["name"] == "batch").unwrap();
        g["versions"].as_array().unwrap().iter().map(|v| v["version"].as_str().unwrap().to_string()).collect()
    };
    let groups_old = co.get("/apis").body;
    let groups_new = cn.get("/apis").body;
    assert_eq!(groups_old["kind"], "APIGroupList");
    assert_eq!(batch_versions(&groups_old), ["v1", "v1beta1"]);
    assert_eq!(batch_versions(&groups_new), ["v1"]);

    // Ingress v1beta1 only before 1.22; cronjobs in batch/v1 from 1.21.
    assert_eq!(co.get("/apis/extensions/v1beta1").code, 200);
    assert_eq!(cn.get("/apis/extensions/v1beta1").code, 404);
    let jobs = cn.get("/apis/batch/v1").body;
    let names: Vec<&str> = jobs["resources"].as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["jobs", "cronjobs"]);

    let core = cn.get("/api/v1").body;
    let ns = core["resources"].as_array().unwrap().iter().find(|r| r["name"] == "namespaces").unwrap();
    assert_eq!(ns["namespaced"], false);
    assert_eq!(cn.get("/api/v2").code, 404);
    assert_eq!(co.get("/version").body["minor"], "21");
}

#[test]
fn apply_create_update_delete() {
    let api = FakeApi::start("1.25");
    let mut c = Client::connect(&api);
    let ns_path = "/api/v1/namespaces/ns";
    let path = "/apis/apps/v1/namespaces/ns/deployments/web";

    assert_eq!(c.apply(ns_path, &namespace("ns")).code, 201);

    let created = c.apply(path, &deployment(None, "web", 1));
    assert_eq!(created.code, 201, "{}", created.body);
    assert_eq!(created.body["metadata"]["namespace"], "ns");
    let uid = created.body["metadata"]["uid"].clone();
    let rv = created.body["metadata"]["resourceVersion"].clone();
    assert!(uid.is_string() && rv.is_string());
    assert!(created.body["metadata"]["creationTimestamp"].is_string());

    let updated = c.apply(path, &deployment(Some("ns"), "web", 3));
    assert_eq!(updated.code, 200, "{}", updated.body);
    assert_eq!(updated.body["metadata"]["uid"], uid);
    assert_ne!(updated.body["metadata"]["resourceVersion"], rv);
    assert_eq!(updated.body["spec"]["replicas"], 3);

    let objects = api.objects();
    assert_eq!(objects.keys().collect::<Vec<_>>(), [ns_path, path]);
    assert_eq!(objects[path], updated.body);
    assert_eq!(c.get(path).body, updated.body);

    // Cluster-scoped object.
    let node = json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}});
    assert_eq!(c.apply("/api/v1/nodes/n1", &node).code, 201);
    assert!(api.objects()["/api/v1/nodes/n1"]["metadata"].get("namespace").is_none());

    // Delete.
    let del = c.call("DELETE", path, &[AUTH], None);
    assert_eq!(del.code, 200);
    assert_eq!(del.body["status"], "Success");
    assert_eq!(c.call("DELETE", path, &[AUTH], None).code, 404);
    assert_eq!(c.get(path).code, 404);

    // Deleting a namespace removes its objects.
    assert_eq!(c.apply(path, &deployment(None, "web", 1)).code, 201);
    assert_eq!(c.call("DELETE", ns_path, &[AUTH], None).code, 200);
    assert_eq!(api.objects().keys().collect::<Vec<_>>(), ["/api/v1/nodes/n1"]);
}

#[test]
fn apply_errors() {
    let api = FakeApi::start("1.25");
    api.put_object("/api/v1/namespaces/ns", namespace("ns"));
    let mut c = Client::connect(&api);
    let path = "/apis/apps/v1/namespaces/ns/deployments/web";

    // Missing namespace.
    let r = c.apply("/apis/apps/v1/namespaces/nope/deployments/web", &deployment(None, "web", 1));
    assert_eq!(r.code, 404);
    assert_eq!(r.body["reason"], "NotFound");
    assert_eq!(r.body["message"], "namespaces \"nope\" not found");
    // Not served at 1.25 / unknown resource / wrong scope.
    let cj = json!({"apiVersion": "batch/v1beta1", "kind": "CronJob", "metadata": {"name": "c"}});
    assert_eq!(c.apply("/apis/batch/v1beta1/namespaces/ns/cronjobs/c", &cj).code, 404);
    assert_eq!(c.apply("/apis/apps/v1/namespaces/ns/widgets/web", &deployment(None, "web", 1)).code, 404);
    assert_eq!(c.apply("/apis/apps/v1/deployments/web", &deployment(None, "web", 1)).code, 404);
    // Body mismatches.
    for body in [
        json!([1, 2]),
        json!({"apiVersion": "apps/v1beta1", "kind": "Deployment", "metadata": {"name": "web"}}),
        json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "web"}}),
        deployment(None, "other", 1),
        deployment(Some("elsewhere"), "web", 1),
    ] {
        let r = c.apply(path, &body);
        assert_eq!(r.code, 400, "{body}");
        assert_eq!(r.body["reason"], "BadRequest");
    }
    // No fieldManager.
    let r = c.call("PATCH", &format!("{path}?force=true"), &[AUTH, APPLY], Some(&deployment(None, "web", 1)));
    assert_eq!(r.code, 422);
    assert_eq!(r.body["reason"], "Invalid");
    // A merge patch of an object that is not there.
    let r = c.call(
        "PATCH",
        &format!("{path}?fieldManager=skel"),
        &[AUTH, ("Content-Type", "application/merge-patch+json")],
        Some(&deployment(None, "web", 1)),
    );
    assert_eq!(r.code, 404);
    assert_eq!(r.body["message"], "deployments.apps \"web\" not found");
    // Another patch type.
    let r = c.call(
        "PATCH",
        &format!("{path}?fieldManager=skel"),
        &[AUTH, ("Content-Type", "application/json-patch+json")],
        Some(&json!([{"op": "add", "path": "/x", "value": 1}])),
    );
    assert_eq!(r.code, 415);
    assert_eq!(r.body["reason"], "UnsupportedMediaType");
    // Unknown route.
    assert_eq!(c.get("/apis/apps/v1/namespaces/ns/deployments/web/status/x").code, 404);
    assert_eq!(c.get("/apis/apps/v1/namespaces/ns/widgets").code, 404);
    assert_eq!(api.objects().len(), 1);
}

#[test]
fn unauthorized_without_token() {
    let api = FakeApi::start("1.25");
    let mut c = Client::connect(&api);
    let r = c.call("GET", "/version", &[], None);
    assert_eq!(r.code, 401);
    assert_eq!(r.body["reason"], "Unauthorized");
    assert_eq!(r.body["kind"], "Status");
    let r = c.call("GET", "/version", &[("Authorization", "Bearer wrong")], None);
    assert_eq!(r.code, 401);
    assert_eq!(c.get("/version").code, 200);
}

#[test]
fn faults() {
    let api = FakeApi::start("1.25");
    api.fault("GET", "/version", 1, Fault::Status { code: 429, reason: "TooManyRequests", retry_after: Some(2) });
    api.fault("*", "/api/v1", 1, Fault::Delay(Duration::from_millis(300)));
    api.fault("GET", "/apis", 1, Fault::Drop);

    let mut c = Client::connect(&api);
    let r = c.get("/version");
    assert_eq!(r.code, 429);
    assert_eq!(r.header("retry-after"), Some("2"));
    assert_eq!(r.body["reason"], "TooManyRequests");
    assert_eq!(r.body["code"], 429);
    assert_eq!(r.body["details"]["retryAfterSeconds"], 2);
    // The rule counted down.
    assert_eq!(c.get("/version").code, 200);

    let start = Instant::now();
    let r = c.get("/api/v1");
    assert!(start.elapsed() >= Duration::from_millis(300));
    assert_eq!(r.code, 200);
    assert_eq!(r.body["kind"], "APIResourceList");

    c.send("GET", "/apis", &[AUTH], None);
    assert!(c.read().is_none(), "dropped request gets no answer");
    // A new connection works; the drop rule is used up.
    let mut c2 = Client::connect(&api);
    assert_eq!(c2.get("/apis").code, 200);

    // Faulted requests are recorded too, in order.
    assert_eq!(api.request_lines(), ["GET /version", "GET /version", "GET /api/v1", "GET /apis", "GET /apis"]);
}

#[test]
fn drop_fault_reads_eof() {
    let api = FakeApi::start("1.25");
    api.fault("*", "", 1, Fault::Drop);
    let mut c = Client::connect(&api);
    c.send("PATCH", "/api/v1/namespaces/x?fieldManager=skel", &[AUTH, APPLY], Some(&namespace("x")));
    assert!(c.at_eof());
    assert_eq!(api.requests()[0].body, Some(namespace("x")));
    assert!(api.objects().is_empty());
}

#[test]
fn access_reviews_and_request_log() {
    let api = FakeApi::start("1.21");
    api.deny("create", "deployments");
    let mut c = Client::connect(&api);
    let review = |verb: &str, resource: &str| {
        json!({
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": {"verb": verb, "group": "apps", "resource": resource, "namespace": "ns"}},
        })
    };
    let path = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews";
    let r = c.call("POST", path, &[AUTH, ("Content-Type", "application/json")], Some(&review("create", "deployments")));
    assert_eq!(r.code, 201);
    assert_eq!(r.body["status"], json!({"allowed": false, "reason": "denied by test"}));
    assert_eq!(r.body["spec"]["resourceAttributes"]["resource"], "deployments");
    let r = c.call("POST", path, &[AUTH], Some(&review("patch", "deployments")));
    assert_eq!(r.body["status"], json!({"allowed": true}));

    let reqs = api.requests();
    assert_eq!(reqs.len(), 2);
    assert_eq!(reqs[0].method, "POST");
    assert!(reqs[0].headers.contains(&("content-type".to_string(), "application/json".to_string())));
    assert_eq!(reqs[1].body, Some(review("patch", "deployments")));
    assert_eq!(api.request_lines(), [format!("POST {path}"), format!("POST {path}")]);
}

#[test]
fn kubeconfig_is_written() {
    let api = FakeApi::start("1.30");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kubeconfig");
    api.write_kubeconfig(&path);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains(&format!("server: {}", api.url())));
    assert!(text.contains("server: http://127.0.0.1:1\n"));
    assert!(text.contains("token: fake-token"));
    assert!(text.contains("current-context: fake"));
    let yaml: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    assert_eq!(yaml["contexts"][0]["context"]["namespace"], "default");
    assert_eq!(yaml["contexts"][1]["name"], "down");
}

// ---------------------------------------------------------------------------------------------
// What a lifecycle replay needs: list, watch, merge patch, pods, stages, terminating namespaces
// ---------------------------------------------------------------------------------------------

use fake_api::Options;

const MERGE: (&str, &str) = ("Content-Type", "application/merge-patch+json");
const JSON: (&str, &str) = ("Content-Type", "application/json");

impl Client {
    /// Reads a chunked response's head, then its body's lines (one JSON value each) until the
    /// last chunk.
    fn read_chunked_lines(&mut self) -> (u16, Vec<(String, String)>, Vec<Value>) {
        let (code, headers) = self.read_head().expect("a response head");
        let mut body = Vec::new();
        loop {
            let mut size = String::new();
            self.reader.read_line(&mut size).unwrap();
            let size = usize::from_str_radix(size.trim(), 16).unwrap();
            if size == 0 {
                let mut end = String::new();
                self.reader.read_line(&mut end).unwrap();
                break;
            }
            let mut chunk = vec![0u8; size + 2];
            self.reader.read_exact(&mut chunk).unwrap();
            body.extend_from_slice(&chunk[..size]);
        }
        let lines =
            body.split(|b| *b == b'\n').filter(|l| !l.is_empty()).map(|l| serde_json::from_slice(l).unwrap()).collect();
        (code, headers, lines)
    }
}

fn names(list: &Value) -> Vec<String> {
    list["items"].as_array().unwrap().iter().map(|o| o["metadata"]["name"].as_str().unwrap().to_string()).collect()
}

fn api_with_pods() -> FakeApi {
    let api = FakeApi::start("1.30");
    api.put_object("/api/v1/namespaces/a", namespace("a"));
    api.put_object("/api/v1/namespaces/b", namespace("b"));
    api.create_pod("a", "web-1", &[("app", "web"), ("tier", "front")], &[], Value::Null).unwrap();
    api.create_pod("a", "web-2", &[("app", "web")], &[], Value::Null).unwrap();
    api.create_pod("a", "db-1", &[("app", "db")], &[], Value::Null).unwrap();
    api.create_pod("b", "web-3", &[("app", "web"), ("tier", "back")], &[], Value::Null).unwrap();
    api.create_pod("b", "lone", &[], &[], Value::Null).unwrap();
    api
}

#[test]
fn every_write_bumps_the_resource_version() {
    let api = FakeApi::start("1.30");
    let mut c = Client::connect(&api);
    assert_eq!(api.resource_version(), 0);
    let ns = c.apply("/api/v1/namespaces/ns", &namespace("ns")).body;
    assert_eq!(ns["metadata"]["resourceVersion"], "1");
    let path = "/apis/apps/v1/namespaces/ns/deployments/web";
    assert_eq!(c.apply(path, &deployment(None, "web", 1)).body["metadata"]["resourceVersion"], "2");
    // The same apply again changes nothing: no new version, no event.
    assert_eq!(c.apply(path, &deployment(None, "web", 1)).body["metadata"]["resourceVersion"], "2");
    let patched = c.call("PATCH", path, &[AUTH, MERGE], Some(&json!({"spec": {"replicas": 4}})));
    assert_eq!(patched.body["metadata"]["resourceVersion"], "3");
    assert_eq!(c.call("DELETE", path, &[AUTH], None).code, 200);
    assert_eq!(api.resource_version(), 4);
    let kinds: Vec<(u64, &str, String)> =
        api.events().into_iter().map(|e| (e.resource_version, e.kind, e.path)).collect();
    assert_eq!(
        kinds,
        [
            (1, "ADDED", "/api/v1/namespaces/ns".to_string()),
            (2, "ADDED", path.to_string()),
            (3, "MODIFIED", path.to_string()),
            (4, "DELETED", path.to_string()),
        ]
    );
    assert_eq!(api.events()[3].object["metadata"]["resourceVersion"], "4");
    assert_eq!(api.events()[3].object["spec"]["replicas"], 4);
}

#[test]
fn list_namespaced_all_namespaces_and_by_selector() {
    let api = api_with_pods();
    let mut c = Client::connect(&api);
    let list = c.get("/api/v1/namespaces/a/pods").body;
    assert_eq!(list["kind"], "PodList");
    assert_eq!(list["apiVersion"], "v1");
    assert_eq!(list["metadata"]["resourceVersion"], api.resource_version().to_string());
    assert_eq!(names(&list), ["db-1", "web-1", "web-2"]);
    assert_eq!(names(&c.get("/api/v1/pods").body), ["db-1", "web-1", "web-2", "lone", "web-3"]);

    let cases: &[(&str, &[&str])] = &[
        ("app%3Dweb", &["web-1", "web-2", "web-3"]),
        ("app%3D%3Dweb", &["web-1", "web-2", "web-3"]),
        ("app%21%3Dweb", &["db-1", "lone"]),
        ("tier", &["web-1", "web-3"]),
        ("%21tier", &["db-1", "web-2", "lone"]),
        ("app%3Dweb%2Ctier%21%3Dback", &["web-1", "web-2"]),
        ("app=web,tier", &["web-1", "web-3"]),
        ("app+%3D+web", &["web-1", "web-2", "web-3"]),
    ];
    for (selector, want) in cases {
        let list = c.get(&format!("/api/v1/pods?labelSelector={selector}")).body;
        assert_eq!(names(&list), *want, "{selector}");
    }
    api.set_pod_phase("b", "web-3", "Running").unwrap();
    let running = c.get("/api/v1/pods?fieldSelector=status.phase%3DRunning").body;
    assert_eq!(names(&running), ["web-3"]);
    let in_a = c.get("/api/v1/pods?fieldSelector=metadata.namespace%3Da,metadata.name!%3Dweb-1").body;
    assert_eq!(names(&in_a), ["db-1", "web-2"]);

    // Groups and cluster-scoped collections too.
    c.apply("/apis/apps/v1/namespaces/a/deployments/web", &deployment(None, "web", 1));
    let deployments = c.get("/apis/apps/v1/deployments").body;
    assert_eq!(deployments["kind"], "DeploymentList");
    assert_eq!(deployments["apiVersion"], "apps/v1");
    assert_eq!(names(&deployments), ["web"]);
    assert_eq!(names(&c.get("/apis/apps/v1/namespaces/b/deployments").body), Vec::<String>::new());
    assert_eq!(names(&c.get("/api/v1/namespaces").body), ["a", "b"]);

    // What a real server refuses.
    let bad = c.get("/api/v1/pods?labelSelector=app%20in%20(web)");
    assert_eq!(bad.code, 400);
    assert_eq!(bad.body["reason"], "BadRequest");
    assert_eq!(c.get("/api/v1/namespaces/a/nodes").code, 404);
    assert_eq!(c.get("/apis/batch/v1beta1/cronjobs").code, 404);
}

#[test]
fn watch_streams_events_as_json_lines() {
    let api = api_with_pods();
    let rv = api.resource_version();
    // From the start: an ADDED for each matching object, then nothing until the timeout.
    let mut c = Client::connect(&api);
    let start = Instant::now();
    c.send("GET", "/api/v1/namespaces/a/pods?watch=true&labelSelector=app%3Dweb&timeoutSeconds=1", &[AUTH], None);
    let (code, headers, events) = c.read_chunked_lines();
    assert!(start.elapsed() >= Duration::from_millis(900), "the watch lasts its timeout");
    assert_eq!(code, 200);
    assert!(headers.contains(&("transfer-encoding".to_string(), "chunked".to_string())));
    let seen: Vec<(String, String)> = events
        .iter()
        .map(|e| {
            (e["type"].as_str().unwrap().to_string(), e["object"]["metadata"]["name"].as_str().unwrap().to_string())
        })
        .collect();
    assert_eq!(seen, [("ADDED".to_string(), "web-1".to_string()), ("ADDED".to_string(), "web-2".to_string())]);
    // The connection is kept alive after a watch.
    assert_eq!(c.get("/version").code, 200);

    // From a version: only later changes, as they happen.
    let watcher = {
        let mut c = Client::connect(&api);
        std::thread::spawn(move || {
            c.send("GET", &format!("/api/v1/pods?watch=1&resourceVersion={rv}&timeoutSeconds=2"), &[AUTH], None);
            c.read_chunked_lines().2
        })
    };
    std::thread::sleep(Duration::from_millis(200));
    api.create_pod("b", "late", &[("app", "web")], &[], Value::Null).unwrap();
    api.set_pod_phase("b", "late", "Running").unwrap();
    let mut c2 = Client::connect(&api);
    assert_eq!(c2.call("DELETE", "/api/v1/namespaces/a/pods/db-1", &[AUTH], None).code, 200);
    // Not a pod: not in this watch.
    c2.apply("/api/v1/namespaces/c", &namespace("c"));
    let events = watcher.join().unwrap();
    let seen: Vec<(&str, &str, &str)> = events
        .iter()
        .map(|e| {
            (
                e["type"].as_str().unwrap(),
                e["object"]["metadata"]["name"].as_str().unwrap(),
                e["object"]["status"]["phase"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(seen, [("ADDED", "late", "Pending"), ("MODIFIED", "late", "Running"), ("DELETED", "db-1", "Pending")]);
    let rvs: Vec<u64> =
        events.iter().map(|e| e["object"]["metadata"]["resourceVersion"].as_str().unwrap().parse().unwrap()).collect();
    assert_eq!(rvs, [rv + 1, rv + 2, rv + 3]);
}

#[test]
fn a_watch_ends_when_the_server_stops() {
    let api = FakeApi::start("1.30");
    let mut c = Client::connect(&api);
    c.send("GET", "/api/v1/pods?watch=true", &[AUTH], None);
    let start = Instant::now();
    // The head comes at once: the watch is then being served.
    let mut status = String::new();
    c.reader.read_line(&mut status).unwrap();
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    // Then EOF or the last chunk when the server goes.
    let reader = std::thread::spawn(move || {
        let mut rest = Vec::new();
        let _ = c.reader.read_to_end(&mut rest);
    });
    drop(api);
    reader.join().unwrap();
    assert!(start.elapsed() < Duration::from_secs(5));
}

#[test]
fn merge_patch_merges_removes_and_conflicts() {
    let api = api_with_pods();
    let mut c = Client::connect(&api);
    let path = "/api/v1/namespaces/a/pods/web-1";
    let before = api.pod("a", "web-1").unwrap();
    let patch = json!({"metadata": {"labels": {"tier": null, "done": "true"}, "annotations": {"at": "5s"}}});
    let r = c.call("PATCH", path, &[AUTH, MERGE], Some(&patch));
    assert_eq!(r.code, 200, "{}", r.body);
    assert_eq!(r.body["metadata"]["labels"], json!({"app": "web", "done": "true"}));
    assert_eq!(r.body["metadata"]["annotations"], json!({"at": "5s"}));
    assert_eq!(r.body["metadata"]["uid"], before["metadata"]["uid"]);
    assert_eq!(r.body["spec"], before["spec"]);
    assert_ne!(r.body["metadata"]["resourceVersion"], before["metadata"]["resourceVersion"]);
    assert_eq!(api.pod("a", "web-1").unwrap(), r.body);

    // Strategic merge patch is taken as a merge patch.
    let r = c.call(
        "PATCH",
        path,
        &[AUTH, ("Content-Type", "application/strategic-merge-patch+json")],
        Some(&json!({"metadata": {"labels": {"done": null}}})),
    );
    assert_eq!(r.code, 200);
    assert_eq!(r.body["metadata"]["labels"], json!({"app": "web"}));

    // A stale resourceVersion in the patch is a conflict.
    let stale = json!({"metadata": {"resourceVersion": before["metadata"]["resourceVersion"], "labels": {"x": "y"}}});
    let r = c.call("PATCH", path, &[AUTH, MERGE], Some(&stale));
    assert_eq!(r.code, 409);
    assert_eq!(r.body["reason"], "Conflict");
    assert_eq!(
        r.body["message"],
        "Operation cannot be fulfilled on pods \"web-1\": the object has been modified; please apply your changes to \
         the latest version and try again"
    );
    // Missing object, not JSON.
    let r = c.call("PATCH", "/api/v1/namespaces/a/pods/nope", &[AUTH, MERGE], Some(&json!({})));
    assert_eq!((r.code, r.body["message"].as_str().unwrap()), (404, "pods \"nope\" not found"));
    let r = c.call("PATCH", path, &[AUTH, MERGE], Some(&json!([1])));
    assert_eq!(r.code, 400);
}

#[test]
fn create_and_update_answer_like_the_api_server() {
    let api = FakeApi::start("1.30");
    let mut c = Client::connect(&api);
    let r = c.call("POST", "/api/v1/namespaces", &[AUTH, JSON], Some(&namespace("ns")));
    assert_eq!(r.code, 201, "{}", r.body);
    let coll = "/apis/apps/v1/namespaces/ns/deployments";
    let r = c.call("POST", coll, &[AUTH, JSON], Some(&deployment(None, "web", 1)));
    assert_eq!(r.code, 201);
    assert_eq!(r.body["metadata"]["namespace"], "ns");
    let r = c.call("POST", coll, &[AUTH, JSON], Some(&deployment(None, "web", 1)));
    assert_eq!((r.code, r.body["reason"].as_str().unwrap()), (409, "AlreadyExists"));
    assert_eq!(r.body["message"], "deployments.apps \"web\" already exists");
    let gen = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"generateName": "web-"}});
    let r = c.call("POST", coll, &[AUTH, JSON], Some(&gen));
    assert_eq!(r.code, 201);
    assert!(r.body["metadata"]["name"].as_str().unwrap().starts_with("web-"));
    let r = c.call("POST", "/apis/apps/v1/namespaces/gone/deployments", &[AUTH, JSON], Some(&deployment(None, "w", 1)));
    assert_eq!((r.code, r.body["message"].as_str().unwrap()), (404, "namespaces \"gone\" not found"));

    // Update: the current resourceVersion passes, a stale one is a conflict.
    let path = format!("{coll}/web");
    let current = c.get(&path).body;
    let mut next = current.clone();
    next["spec"]["replicas"] = json!(2);
    let r = c.call("PUT", &path, &[AUTH, JSON], Some(&next));
    assert_eq!(r.code, 200, "{}", r.body);
    assert_eq!(r.body["spec"]["replicas"], 2);
    let r = c.call("PUT", &path, &[AUTH, JSON], Some(&next));
    assert_eq!((r.code, r.body["reason"].as_str().unwrap()), (409, "Conflict"));
    let r = c.call("PUT", &format!("{coll}/nope"), &[AUTH, JSON], Some(&deployment(None, "nope", 1)));
    assert_eq!(r.code, 404);
    let r = c.call("PUT", &path, &[AUTH, JSON], Some(&deployment(None, "other", 1)));
    assert_eq!(r.code, 400);
}

#[test]
fn pods_a_test_drives() {
    let api = FakeApi::start("1.30");
    assert_eq!(api.create_pod("ns", "p", &[], &[], Value::Null).unwrap_err(), "namespaces \"ns\" not found");
    api.put_object("/api/v1/namespaces/ns", namespace("ns"));
    let owners = json!([{"apiVersion": "batch/v1", "kind": "Job", "name": "j", "uid": "u1", "controller": true}]);
    let pod = api.create_pod("ns", "j-abc", &[("job-name", "j")], &[("note", "x")], owners.clone()).unwrap();
    assert_eq!(pod["status"]["phase"], "Pending");
    assert_eq!(pod["metadata"]["ownerReferences"], owners);
    assert_eq!(pod["metadata"]["labels"], json!({"job-name": "j"}));
    assert_eq!(pod["metadata"]["annotations"], json!({"note": "x"}));
    assert_eq!(pod["metadata"]["namespace"], "ns");
    assert_eq!(api.create_pod("ns", "j-abc", &[], &[], Value::Null).unwrap_err(), "pods \"j-abc\" already exists");

    let running = api.set_pod_phase("ns", "j-abc", "Running").unwrap();
    assert_eq!(running["status"]["phase"], "Running");
    assert!(running["status"]["startTime"].is_string());
    let done = api.set_pod_phase("ns", "j-abc", "Succeeded").unwrap();
    assert_eq!(done["status"]["phase"], "Succeeded");
    assert!(api.set_pod_phase("ns", "nope", "Running").is_err());
    assert_eq!(api.pods(), [done]);
    let kinds: Vec<&str> = api.events().iter().map(|e| e.kind).collect();
    assert_eq!(kinds, ["ADDED", "ADDED", "MODIFIED", "MODIFIED"]);
    assert!(api.wait_until(Duration::from_millis(10), |objects| objects.len() == 2));
}

fn stage(name: &str) -> Value {
    json!({
        "apiVersion": "kwok.x-k8s.io/v1alpha1",
        "kind": "Stage",
        "metadata": {"name": name},
        "spec": {"resourceRef": {"apiGroup": "v1", "kind": "Pod"}, "selector": {"matchLabels": {"a": "b"}}},
    })
}

#[test]
fn kwok_stages_are_served_when_asked() {
    let plain = FakeApi::start("1.30");
    let mut c = Client::connect(&plain);
    assert!(!c.get("/apis").body["groups"].as_array().unwrap().iter().any(|g| g["name"] == "kwok.x-k8s.io"));
    assert_eq!(c.get("/apis/kwok.x-k8s.io/v1alpha1").code, 404);
    assert_eq!(c.apply("/apis/kwok.x-k8s.io/v1alpha1/stages/pod-complete", &stage("pod-complete")).code, 404);

    let api = FakeApi::start_with("1.30", Options { kwok_stages: true, ..Options::default() });
    let mut c = Client::connect(&api);
    let groups = c.get("/apis").body;
    let kwok = groups["groups"].as_array().unwrap().iter().find(|g| g["name"] == "kwok.x-k8s.io").unwrap();
    assert_eq!(kwok["preferredVersion"]["groupVersion"], "kwok.x-k8s.io/v1alpha1");
    let resources = c.get("/apis/kwok.x-k8s.io/v1alpha1").body;
    assert_eq!(resources["resources"][0]["name"], "stages");
    assert_eq!(resources["resources"][0]["kind"], "Stage");
    assert_eq!(resources["resources"][0]["namespaced"], false);

    let path = "/apis/kwok.x-k8s.io/v1alpha1/stages/pod-complete";
    assert_eq!(c.apply(path, &stage("pod-complete")).code, 201);
    assert_eq!(c.apply("/apis/kwok.x-k8s.io/v1alpha1/stages/pod-ready", &stage("pod-ready")).code, 201);
    assert_eq!(c.get(path).body["spec"]["resourceRef"]["kind"], "Pod");
    let list = c.get("/apis/kwok.x-k8s.io/v1alpha1/stages").body;
    assert_eq!(list["kind"], "StageList");
    assert_eq!(names(&list), ["pod-complete", "pod-ready"]);
    let r = c.call("PATCH", path, &[AUTH, MERGE], Some(&json!({"spec": {"weight": 1}})));
    assert_eq!(r.code, 200);
    assert_eq!(r.body["spec"]["weight"], 1);
    assert_eq!(c.call("DELETE", path, &[AUTH], None).code, 200);
    assert_eq!(c.get(path).code, 404);
    assert_eq!(names(&c.get("/apis/kwok.x-k8s.io/v1alpha1/stages").body), ["pod-ready"]);
    // Cluster-scoped: not under a namespace.
    assert_eq!(c.get("/apis/kwok.x-k8s.io/v1alpha1/namespaces/default/stages").code, 404);
}

#[test]
fn namespaces_take_time_to_go_when_asked() {
    let after = Duration::from_millis(500);
    let api = FakeApi::start_with("1.30", Options { namespace_termination: Some(after), ..Options::default() });
    let mut c = Client::connect(&api);
    c.apply("/api/v1/namespaces/ns", &namespace("ns"));
    let path = "/apis/apps/v1/namespaces/ns/deployments/web";
    assert_eq!(c.apply(path, &deployment(None, "web", 1)).code, 201);

    let deleted_at = Instant::now();
    let r = c.call("DELETE", "/api/v1/namespaces/ns", &[AUTH], None);
    assert_eq!(r.code, 200);
    assert_eq!(r.body["kind"], "Namespace");
    assert_eq!(r.body["status"]["phase"], "Terminating");
    assert!(r.body["metadata"]["deletionTimestamp"].is_string());
    // Still there, with its objects; new content is refused.
    assert_eq!(c.get("/api/v1/namespaces/ns").body["status"]["phase"], "Terminating");
    assert_eq!(c.get(path).code, 200);
    let r = c.apply("/apis/apps/v1/namespaces/ns/deployments/other", &deployment(None, "other", 1));
    assert_eq!(r.code, 403);
    assert_eq!(r.body["reason"], "Forbidden");
    assert_eq!(r.body["message"], "unable to create new content in namespace ns because it is being terminated");
    let r = c.call("POST", "/apis/apps/v1/namespaces/ns/deployments", &[AUTH, JSON], Some(&deployment(None, "x", 1)));
    assert_eq!(r.code, 403);
    assert!(api.create_pod("ns", "p", &[], &[], Value::Null).unwrap_err().contains("being terminated"));
    let r = c.call("DELETE", "/api/v1/namespaces/ns", &[AUTH], None);
    assert_eq!((r.code, r.body["reason"].as_str().unwrap()), (409, "Conflict"));

    // Then it goes, objects first.
    assert!(api.wait_until(Duration::from_secs(5), |objects| objects.is_empty()));
    assert!(deleted_at.elapsed() >= after);
    assert_eq!(c.get("/api/v1/namespaces/ns").code, 404);
    let tail: Vec<(&str, String)> = api.events().iter().rev().take(2).map(|e| (e.kind, e.path.clone())).collect();
    assert_eq!(tail, [("DELETED", "/api/v1/namespaces/ns".to_string()), ("DELETED", path.to_string())]);
    // And the name can be used again.
    assert_eq!(c.apply("/api/v1/namespaces/ns", &namespace("ns")).code, 201);
}

// ---------------------------------------------------------------------------------------------
// kube-rs against the fake server
// ---------------------------------------------------------------------------------------------

async fn kube_client(api: &FakeApi, dir: &std::path::Path) -> kube::Client {
    let path = dir.join("kubeconfig");
    api.write_kubeconfig(&path);
    let kubeconfig = kube::config::Kubeconfig::read_from(&path).unwrap();
    let config =
        kube::Config::from_custom_kubeconfig(kubeconfig, &kube::config::KubeConfigOptions::default()).await.unwrap();
    kube::Client::try_from(config).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_rs_lists_and_watches_pods() {
    use futures::{StreamExt, TryStreamExt};
    use k8s_openapi::api::core::v1::Pod;
    use kube::api::{Api, ListParams, WatchEvent, WatchParams};

    let api = api_with_pods();
    let dir = tempfile::tempdir().unwrap();
    let client = kube_client(&api, dir.path()).await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "a");
    let list = pods.list(&ListParams::default().labels("app=web")).await.unwrap();
    let got: Vec<String> = list.items.iter().map(|p| p.metadata.name.clone().unwrap()).collect();
    assert_eq!(got, ["web-1", "web-2"]);
    let rv = list.metadata.resource_version.clone().unwrap();
    let all: Api<Pod> = Api::all(client.clone());
    assert_eq!(all.list(&ListParams::default().labels("tier")).await.unwrap().items.len(), 2);

    let stream = all.watch(&WatchParams::default().labels("app=web").timeout(5), &rv).await.unwrap();
    let mut stream = stream.boxed();
    api.create_pod("b", "new", &[("app", "web")], &[], Value::Null).unwrap();
    api.create_pod("b", "other", &[("app", "db")], &[], Value::Null).unwrap();
    api.set_pod_phase("b", "new", "Running").unwrap();
    let mut seen = Vec::new();
    while seen.len() < 2 {
        match stream.try_next().await.unwrap().unwrap() {
            WatchEvent::Added(p) => seen.push(("Added", p.metadata.name.unwrap(), p.status.unwrap().phase.unwrap())),
            WatchEvent::Modified(p) => {
                seen.push(("Modified", p.metadata.name.unwrap(), p.status.unwrap().phase.unwrap()))
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(
        seen,
        [("Added", "new".to_string(), "Pending".to_string()), ("Modified", "new".to_string(), "Running".to_string())]
    );

    // A merge patch through kube-rs.
    let patch = json!({"metadata": {"labels": {"simkube.io/kwok-stage-complete": "true"}}});
    let patched =
        pods.patch("web-1", &kube::api::PatchParams::default(), &kube::api::Patch::Merge(&patch)).await.unwrap();
    assert_eq!(patched.metadata.labels.unwrap()["simkube.io/kwok-stage-complete"], "true");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_rs_watch_from_the_start_gets_the_existing_pods() {
    use futures::{StreamExt, TryStreamExt};
    use k8s_openapi::api::core::v1::Pod;
    use kube::api::{Api, WatchEvent, WatchParams};

    let api = api_with_pods();
    let dir = tempfile::tempdir().unwrap();
    let client = kube_client(&api, dir.path()).await;
    let pods: Api<Pod> = Api::namespaced(client, "b");
    let mut stream = pods.watch(&WatchParams::default().timeout(1), "0").await.unwrap().boxed();
    let mut added = Vec::new();
    while let Some(event) = stream.try_next().await.unwrap() {
        if let WatchEvent::Added(p) = event {
            added.push(p.metadata.name.unwrap());
        }
    }
    // The stream ends with the watch's timeout.
    assert_eq!(added, ["lone", "web-3"]);
}
