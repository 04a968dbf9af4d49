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

    /// Reads one response; None on EOF before the status line.
    fn read(&mut self) -> Option<Resp> {
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
