//! A stand-in for Meta's Graph API: a real HTTP server on loopback that
//! answers every call the host makes the way the Cloud API does — sends
//! (`POST /{phone-number-id}/messages`, checked against the account's
//! templates as Meta checks them), and template management (`GET` paged
//! with cursors, `POST`, `DELETE /{waba-id}/message_templates`) — with
//! Meta's error shapes and codes — and media: `GET /{media-id}` answers a
//! URL that expires after five minutes and serves the file only with the
//! token. Tests can fail the next requests or downloads, corrupt a file,
//! slow every answer, seed the account's templates and media and cap the
//! page size.
//!
//! An account with no templates seeded accepts any template send (the
//! older tests send templates they never defined).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path as AxPath, Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::routing::post;
use serde_json::{Value, json};

#[derive(Debug, Clone)]
pub struct RecordedSend {
    pub method: String,
    /// `/{version}/{node}/{edge}`, without the query.
    pub path: String,
    pub query: String,
    pub authorization: Option<String>,
    pub body: Value,
    /// When it arrived.
    pub at: std::time::Instant,
}

#[derive(Default)]
struct Account {
    /// This server's own address, for the media URLs it hands out.
    base: Mutex<String>,
    requests: Mutex<Vec<RecordedSend>>,
    failures: Mutex<Vec<(u16, Value)>>,
    /// How long each answer takes (Meta's take tens of milliseconds).
    latency: Mutex<Duration>,
    /// The account's templates as Meta lists them.
    templates: Mutex<Vec<Value>>,
    /// The most templates one page holds, whatever `limit` asks.
    page_max: Mutex<Option<usize>>,
    ids: AtomicU64,
    /// Media id → (bytes, mime type).
    media: Mutex<std::collections::HashMap<String, (Vec<u8>, String)>>,
    /// Downloads that answer 500 before one succeeds.
    failing_downloads: Mutex<usize>,
    /// Media ids served with their bytes changed.
    corrupted: Mutex<std::collections::HashSet<String>>,
}

/// How long a media URL works, as Meta's ("valid for 5 minutes").
const MEDIA_URL_SECONDS: u64 = 300;

type Answer = (StatusCode, axum::Json<Value>);

fn meta_error(status: StatusCode, code: i64, message: &str, details: Option<&str>) -> Answer {
    let mut error = json!({ "message": message, "type": "OAuthException", "code": code, "fbtrace_id": "AbCdEfGh" });
    if let Some(d) = details {
        error["error_data"] = json!({ "messaging_product": "whatsapp", "details": d });
    }
    (status, axum::Json(json!({ "error": error })))
}

pub struct FakeMeta {
    pub base: String,
    account: Arc<Account>,
}

impl FakeMeta {
    pub async fn start() -> FakeMeta {
        let account = Arc::new(Account::default());
        let app = axum::Router::new()
            .route("/{version}/{node}/messages", post(messages))
            .route("/{version}/{node}/message_templates", axum::routing::any(templates))
            .route("/{version}/{node}", axum::routing::get(media_url))
            .route("/{version}/{node}/media", post(upload))
            .route("/lookaside/whatsapp_business/attachments", axum::routing::get(media_file))
            .with_state(account.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind fake meta");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, app).await });
        *account.base.lock().unwrap() = format!("http://{addr}");
        FakeMeta { base: format!("http://{addr}"), account }
    }

    /// A file a contact sent, as Meta keeps it; returns its sha256 in
    /// base64, as the webhook carries it.
    pub fn add_media(&self, id: &str, bytes: &[u8], mime_type: &str) -> String {
        use base64::Engine as _;
        use sha2::Digest as _;
        self.account.media.lock().unwrap().insert(id.to_string(), (bytes.to_vec(), mime_type.to_string()));
        base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(bytes))
    }

    /// The next `n` downloads of a file answer 500.
    pub fn fail_downloads(&self, n: usize) {
        *self.account.failing_downloads.lock().unwrap() = n;
    }

    /// Serves the file with its bytes changed (or again as it is).
    pub fn corrupt(&self, id: &str, corrupted: bool) {
        let mut set = self.account.corrupted.lock().unwrap();
        if corrupted {
            set.insert(id.to_string());
        } else {
            set.remove(id);
        }
    }

    /// Every later answer takes `latency`.
    pub fn set_latency(&self, latency: Duration) {
        *self.account.latency.lock().unwrap() = latency;
    }

    /// The next `n` requests fail with `status` and Meta's error `code`.
    pub fn fail_next(&self, n: usize, status: u16, code: i64) {
        let error = json!({ "error": { "message": "planned failure", "type": "OAuthException", "code": code, "fbtrace_id": "x" } });
        self.account.failures.lock().unwrap().extend(std::iter::repeat_n((status, error), n));
    }

    /// The message sends received (`POST …/messages`), in order; read
    /// receipts are [`FakeMeta::receipts`].
    pub fn sent(&self) -> Vec<RecordedSend> {
        self.requests().into_iter().filter(|r| r.path.ends_with("/messages") && r.body["status"] != "read").collect()
    }

    /// The read receipts received, in order.
    pub fn receipts(&self) -> Vec<Value> {
        self.requests().into_iter().filter(|r| r.body["status"] == "read").map(|r| r.body).collect()
    }

    /// Every request received, in order.
    pub fn requests(&self) -> Vec<RecordedSend> {
        self.account.requests.lock().unwrap().clone()
    }

    /// Adds a template to the account as Meta would list it.
    pub fn add_template(&self, mut template: Value) {
        if template.get("id").is_none() {
            template["id"] = json!(self.next_id());
        }
        self.account.templates.lock().unwrap().push(template);
    }

    /// Changes a template's status, as Meta's review or quality system
    /// does (a webhook tells the host).
    pub fn set_template_status(&self, name: &str, language: &str, status: &str) {
        for t in self.account.templates.lock().unwrap().iter_mut() {
            if t["name"] == name && t["language"] == language {
                t["status"] = json!(status);
            }
        }
    }

    /// Deletes a template, as a person does in WhatsApp Manager.
    pub fn remove_template(&self, name: &str) {
        self.account.templates.lock().unwrap().retain(|t| t["name"] != name);
    }

    /// A file as the account keeps it (uploaded or received).
    pub fn media(&self, id: &str) -> Option<(Vec<u8>, String)> {
        self.account.media.lock().unwrap().get(id).cloned()
    }

    pub fn templates(&self) -> Vec<Value> {
        self.account.templates.lock().unwrap().clone()
    }

    /// Pages hold at most `n` templates.
    pub fn set_page_max(&self, n: usize) {
        *self.account.page_max.lock().unwrap() = Some(n);
    }

    fn next_id(&self) -> String {
        format!("17{:014}", self.account.ids.fetch_add(1, Ordering::Relaxed) + 1)
    }
}

/// Keeps the request in the log; its `Authorization` header.
fn record(account: &Account, method: &Method, uri: &Uri, headers: &HeaderMap, body: &Value) -> Option<String> {
    let authorization = headers.get("authorization").and_then(|v| v.to_str().ok()).map(String::from);
    account.requests.lock().unwrap().push(RecordedSend {
        method: method.to_string(),
        path: uri.path().to_string(),
        query: uri.query().unwrap_or_default().to_string(),
        authorization: authorization.clone(),
        body: body.clone(),
        at: std::time::Instant::now(),
    });
    authorization
}

/// Records the request, waits the latency, and answers a planned failure
/// or a bad token as Meta would; `None` to go on.
async fn receive(account: &Account, method: &Method, uri: &Uri, headers: &HeaderMap, body: &Value) -> Option<Answer> {
    let authorization = record(account, method, uri, headers, body);
    let latency = *account.latency.lock().unwrap();
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let planned = {
        let mut f = account.failures.lock().unwrap();
        if f.is_empty() { None } else { Some(f.remove(0)) }
    };
    if let Some((status, error)) = planned {
        return Some((StatusCode::from_u16(status).unwrap(), axum::Json(error)));
    }
    // Meta's user and system-user tokens start with EAA.
    if !authorization.as_deref().is_some_and(|a| a.starts_with("Bearer EAA")) {
        return Some(meta_error(
            StatusCode::UNAUTHORIZED,
            190,
            "Invalid OAuth access token - Cannot parse access token",
            None,
        ));
    }
    None
}

async fn messages(
    State(account): State<Arc<Account>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Answer {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    if let Some(answer) = receive(&account, &method, &uri, &headers, &body).await {
        return answer;
    }
    // A read receipt names the contact's message, not a recipient.
    if body["status"] == "read" {
        return match body["message_id"].as_str() {
            Some(id) if id.starts_with("wamid.") => (StatusCode::OK, axum::Json(json!({ "success": true }))),
            _ => meta_error(StatusCode::BAD_REQUEST, 100, "(#100) Invalid parameter", Some("message_id")),
        };
    }
    // As Meta: the recipient is `to` (a phone) or `recipient` (a BSUID);
    // `to` wins when both are given; one is required.
    let contact = match (body["to"].as_str(), body["recipient"].as_str()) {
        (Some(to), _) => json!({ "input": to, "wa_id": to }),
        (None, Some(bsuid)) => json!({ "input": bsuid, "user_id": bsuid }),
        (None, None) => {
            return meta_error(StatusCode::BAD_REQUEST, 100, "(#100) The parameter to is required.", None);
        }
    };
    if body["type"] == "template"
        && let Some(refused) = check_template_send(&account.templates.lock().unwrap(), &body["template"])
    {
        return refused;
    }
    // Media sent by id must have been uploaded to the number.
    let kind = body["type"].as_str().unwrap_or_default();
    if let Some(id) = body[kind]["id"].as_str()
        && ["image", "audio", "video", "document", "sticker"].contains(&kind)
        && !account.media.lock().unwrap().contains_key(id)
    {
        return meta_error(StatusCode::BAD_REQUEST, 131053, "(#131053) Media upload error", Some("unknown media id"));
    }
    let n = account.requests.lock().unwrap().len();
    let answer = json!({ "messaging_product": "whatsapp", "contacts": [contact], "messages": [{ "id": format!("wamid.FAKE{n:04}") }] });
    (StatusCode::OK, axum::Json(answer))
}

/// How many distinct `{{…}}` a component's text holds.
fn variables(text: &str) -> usize {
    let mut seen: Vec<&str> = Vec::new();
    for piece in text.split("{{").skip(1) {
        if let Some((name, _)) = piece.split_once("}}")
            && !seen.contains(&name.trim())
        {
            seen.push(name.trim());
        }
    }
    seen.len()
}

/// Meta's answer to a template send that does not fit the account's
/// template, if it does not (error codes of the Cloud API reference).
fn check_template_send(templates: &[Value], send: &Value) -> Option<Answer> {
    if templates.is_empty() {
        return None;
    }
    let (name, language) = (send["name"].as_str()?, send["language"]["code"].as_str().unwrap_or_default());
    let bad =
        |code, message: &str, details: String| Some(meta_error(StatusCode::BAD_REQUEST, code, message, Some(&details)));
    let Some(t) = templates.iter().find(|t| t["name"] == name && t["language"] == language) else {
        return bad(
            132001,
            "(#132001) Template name does not exist in the translation",
            format!("template name ({name}) does not exist in {language}"),
        );
    };
    match t["status"].as_str() {
        Some("APPROVED") => {}
        Some("PAUSED") => {
            return bad(132015, "(#132015) Template is Paused", "Template is paused due to low quality".into());
        }
        Some("DISABLED") => return bad(132016, "(#132016) Template is Disabled", "Template is disabled".into()),
        _ => return bad(132001, "(#132001) Template name does not exist in the translation", "not approved".into()),
    }
    let sent = send["components"].as_array().cloned().unwrap_or_default();
    let sent_of = |kind: &str| sent.iter().filter(|c| c["type"] == kind).cloned().collect::<Vec<_>>();
    for c in t["components"].as_array().into_iter().flatten() {
        match c["type"].as_str().unwrap_or_default() {
            "BODY" => {
                let given = sent_of("body").first().and_then(|b| b["parameters"].as_array().map(Vec::len)).unwrap_or(0);
                let expected = variables(c["text"].as_str().unwrap_or_default());
                if given != expected {
                    return bad(
                        132000,
                        "(#132000) Number of parameters does not match the expected number of params",
                        format!(
                            "body: number of localizable_params ({given}) does not match the expected number of params ({expected})"
                        ),
                    );
                }
            }
            "HEADER" => {
                let format = c["format"].as_str().unwrap_or("TEXT").to_ascii_lowercase();
                let given =
                    sent_of("header").first().and_then(|h| h["parameters"][0]["type"].as_str().map(String::from));
                let needed = format != "text" || variables(c["text"].as_str().unwrap_or_default()) > 0;
                if needed && given.as_deref() != Some(format.as_str()) {
                    return bad(
                        132012,
                        "(#132012) Parameter format does not match format in the created template",
                        format!(
                            "header: Format mismatch, expected {}, received {}",
                            format.to_uppercase(),
                            given.unwrap_or_else(|| "nothing".into()).to_uppercase()
                        ),
                    );
                }
            }
            _ => {}
        }
    }
    None
}

async fn templates(
    State(account): State<Arc<Account>>,
    AxPath((version, node)): AxPath<(String, String)>,
    Query(query): Query<std::collections::HashMap<String, String>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Answer {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    if let Some(answer) = receive(&account, &method, &uri, &headers, &body).await {
        return answer;
    }
    match method {
        Method::GET => list(&account, &query, &format!("/{version}/{node}/message_templates")),
        Method::POST => create(&account, &body),
        Method::DELETE => delete(&account, &query),
        _ => meta_error(StatusCode::BAD_REQUEST, 100, "(#100) Unsupported method", None),
    }
}

/// One page: `limit` (default 25, at most the page cap) after the cursor;
/// `paging.next` only while more follow, as the Graph API pages.
fn list(account: &Account, query: &std::collections::HashMap<String, String>, path: &str) -> Answer {
    let all = account.templates.lock().unwrap().clone();
    let cap = account.page_max.lock().unwrap().unwrap_or(usize::MAX);
    let limit = query.get("limit").and_then(|l| l.parse::<usize>().ok()).unwrap_or(25).min(cap).max(1);
    let start = match query.get("after") {
        Some(cursor) => match cursor.strip_prefix("QVFI").and_then(|n| n.parse::<usize>().ok()) {
            Some(n) => n + 1,
            None => return meta_error(StatusCode::BAD_REQUEST, 100, "(#100) Invalid cursor", None),
        },
        None => 0,
    };
    let page: Vec<Value> = all.iter().skip(start).take(limit).cloned().collect();
    let mut answer = json!({ "data": page });
    if !page.is_empty() {
        let last = start + page.len() - 1;
        answer["paging"] = json!({ "cursors": { "before": format!("QVFI{start}"), "after": format!("QVFI{last}") } });
        if last + 1 < all.len() {
            answer["paging"]["next"] =
                json!(format!("https://graph.facebook.com{path}?limit={limit}&after=QVFI{last}"));
        }
    }
    (StatusCode::OK, axum::Json(answer))
}

fn create(account: &Account, body: &Value) -> Answer {
    let name = body["name"].as_str().unwrap_or_default();
    let language = body["language"].as_str().unwrap_or_default();
    let category = body["category"].as_str().unwrap_or_default();
    let name_ok = !name.is_empty() && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !name_ok || language.is_empty() || !["MARKETING", "UTILITY", "AUTHENTICATION"].contains(&category) {
        return meta_error(StatusCode::BAD_REQUEST, 100, "(#100) Invalid parameter", None);
    }
    let mut templates = account.templates.lock().unwrap();
    if templates.iter().any(|t| t["name"] == name && t["language"] == language) {
        let (status, mut error) = meta_error(StatusCode::BAD_REQUEST, 100, "(#100) Invalid parameter", None);
        error.0["error"]["error_subcode"] = json!(2388024);
        error.0["error"]["error_user_msg"] = json!("Content in this language already exists");
        return (status, error);
    }
    let id = format!("18{:014}", account.ids.fetch_add(1, Ordering::Relaxed) + 1);
    templates.push(json!({ "id": id, "name": name, "language": language, "status": "PENDING", "category": category,
        "parameter_format": body.get("parameter_format").cloned().unwrap_or(json!("POSITIONAL")),
        "components": body["components"] }));
    (StatusCode::OK, axum::Json(json!({ "id": id, "status": "PENDING", "category": category })))
}

fn delete(account: &Account, query: &std::collections::HashMap<String, String>) -> Answer {
    let Some(name) = query.get("name") else {
        return meta_error(StatusCode::BAD_REQUEST, 100, "(#100) The parameter name is required", None);
    };
    let mut templates = account.templates.lock().unwrap();
    let before = templates.len();
    templates.retain(|t| !(t["name"] == name.as_str() && query.get("hsm_id").is_none_or(|id| t["id"] == id.as_str())));
    if templates.len() == before {
        return meta_error(
            StatusCode::BAD_REQUEST,
            100,
            "(#100) Invalid parameter",
            Some("Message template not found"),
        );
    }
    (StatusCode::OK, axum::Json(json!({ "success": true })))
}

fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default()
}

/// `GET /{media-id}`: where to download it, for five minutes.
async fn media_url(
    State(account): State<Arc<Account>>,
    AxPath((_version, id)): AxPath<(String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Answer {
    use sha2::Digest as _;
    if let Some(answer) = receive(&account, &method, &uri, &headers, &Value::Null).await {
        return answer;
    }
    let Some((bytes, mime)) = account.media.lock().unwrap().get(&id).cloned() else {
        let message = format!("Unsupported get request. Object with ID '{id}' does not exist");
        let (status, mut error) = meta_error(StatusCode::BAD_REQUEST, 100, &message, None);
        error.0["error"]["error_subcode"] = json!(33);
        return (status, error);
    };
    let base = account.base.lock().unwrap().clone();
    let expires = unix_now() + MEDIA_URL_SECONDS;
    let url = format!("{base}/lookaside/whatsapp_business/attachments?mid={id}&ext={expires}&hash=ATtest");
    (
        StatusCode::OK,
        axum::Json(json!({ "messaging_product": "whatsapp", "url": url, "mime_type": mime,
        "sha256": hex::encode(sha2::Sha256::digest(&bytes)), "file_size": bytes.len().to_string(), "id": id })),
    )
}

/// The download: only with the token, only before the URL expires.
async fn media_file(
    State(account): State<Arc<Account>>,
    Query(query): Query<std::collections::HashMap<String, String>>,
    uri: Uri,
    headers: HeaderMap,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let authorization = record(&account, &Method::GET, &uri, &headers, &Value::Null);
    let authorized = authorization.as_deref().is_some_and(|a| a.starts_with("Bearer EAA"));
    let expired = query.get("ext").and_then(|e| e.parse::<u64>().ok()).is_none_or(|e| e < unix_now());
    if !authorized || expired {
        return (StatusCode::NOT_FOUND, "URL signature mismatch").into_response();
    }
    {
        let mut failing = account.failing_downloads.lock().unwrap();
        if *failing > 0 {
            *failing -= 1;
            return (StatusCode::INTERNAL_SERVER_ERROR, "try again").into_response();
        }
    }
    let id = query.get("mid").cloned().unwrap_or_default();
    let Some((mut bytes, mime)) = account.media.lock().unwrap().get(&id).cloned() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    if account.corrupted.lock().unwrap().contains(&id)
        && let Some(b) = bytes.last_mut()
    {
        *b ^= 0xff;
    }
    ([(axum::http::header::CONTENT_TYPE, mime)], bytes).into_response()
}

/// `POST /{phone-number-id}/media`: a multipart form with
/// `messaging_product`, `type` and the `file`; answers its id.
async fn upload(
    State(account): State<Arc<Account>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    mut form: axum::extract::Multipart,
) -> Answer {
    if let Some(answer) = receive(&account, &method, &uri, &headers, &Value::Null).await {
        return answer;
    }
    let (mut product, mut kind, mut file) = (None, None, None);
    while let Ok(Some(field)) = form.next_field().await {
        let name = field.name().unwrap_or_default().to_string();
        let filename = field.file_name().map(String::from);
        let bytes = field.bytes().await.unwrap_or_default().to_vec();
        match name.as_str() {
            "messaging_product" => product = Some(String::from_utf8_lossy(&bytes).into_owned()),
            "type" => kind = Some(String::from_utf8_lossy(&bytes).into_owned()),
            "file" => file = Some((bytes, filename)),
            _ => {}
        }
    }
    let (Some("whatsapp"), Some(mime), Some((bytes, Some(_)))) = (product.as_deref(), kind, file) else {
        return meta_error(StatusCode::BAD_REQUEST, 100, "(#100) The parameter file is required", None);
    };
    let id = format!("19{:014}", account.ids.fetch_add(1, Ordering::Relaxed) + 1);
    account.media.lock().unwrap().insert(id.clone(), (bytes, mime));
    (StatusCode::OK, axum::Json(json!({ "id": id })))
}
