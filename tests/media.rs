//! Inbound media against the Graph API stand-in over real HTTP, as Meta's
//! "Media" reference describes it: the webhook names a media id and its
//! sha256; `GET /{media-id}` answers a five-minute URL; the file comes
//! with the token. Stored, served with auth to its tenant only, retried
//! when a download fails, refused when it does not match its checksum.

mod support;

use reqwest::Method;
use serde_json::{Value, json};
use support::*;

/// A JPEG's first bytes and some more: what a phone camera would send.
const PHOTO: &[u8] = b"\xFF\xD8\xFF\xE0\x00\x10JFIF\x00 a photo of the broken part";

/// A media message as Meta's webhook reference writes one.
fn media_message(from: &str, wamid: &str, kind: &str, media: Value, at: i64) -> Value {
    let mut p = text_message(from, "Ana", wamid, "", at);
    let m = &mut first_value(&mut p)["messages"][0];
    m.as_object_mut().unwrap().remove("text");
    m["type"] = json!(kind);
    m[kind] = media;
    p
}

async fn info(host: &TestHost, key: &str, id: &str) -> Value {
    host.get_as(key, &format!("/v1/media/{id}/info")).await.1
}

async fn stored(host: &TestHost, id: &str) -> Value {
    wait_for("the file to be stored", || async {
        let r = info(host, API_KEY, id).await;
        (r["state"] == "stored").then_some(r)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inbound_image_is_fetched_checked_stored_and_served_to_its_tenant_only() {
    let meta = FakeMeta::start().await;
    let sha = meta.add_media("1468837437713010", PHOTO, "image/jpeg");
    let host = TestHost::sending_to(&meta).await;
    let image =
        json!({ "caption": "a peça quebrada", "mime_type": "image/jpeg", "sha256": sha, "id": "1468837437713010" });
    let (status, _) =
        host.post_payload(&media_message("5511987654321", "wamid.IMG1", "image", image, host.now_secs())).await;
    assert_eq!(status, 200);

    let record = stored(&host, "1468837437713010").await;
    assert_eq!(
        (record["message_id"].as_str(), record["size"].as_u64()),
        (Some("wamid.IMG1"), Some(PHOTO.len() as u64))
    );
    let asked: Vec<RecordedSend> = meta.requests().into_iter().filter(|r| r.method == "GET").collect();
    assert!(
        asked[0].path.ends_with("/1468837437713010") && asked[1].path == "/lookaside/whatsapp_business/attachments",
        "{asked:?}"
    );
    assert!(asked.iter().all(|r| r.authorization.as_deref() == Some("Bearer EAAtoken")));

    let response =
        host.http.get(format!("{}/v1/media/1468837437713010", host.base)).bearer_auth(API_KEY).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    assert_eq!(headers["content-type"], "image/jpeg");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(response.bytes().await.unwrap().as_ref(), PHOTO);
    let unauthenticated = host.http.get(format!("{}/v1/media/1468837437713010", host.base)).send().await.unwrap();
    assert_eq!(unauthenticated.status(), 401);
    let other = host.create_tenant("other", "200000000000002", "other-secret").await;
    let (status, _) = host.get_as(&other, "/v1/media/1468837437713010").await;
    assert_eq!(status, 404, "another tenant's key never reaches it");

    // The conversation shows the file beside its message.
    let view = host.conversation_of("+5511987654321").await;
    assert_eq!(
        (view["media"][0]["message_id"].as_str(), view["media"][0]["state"].as_str()),
        (Some("wamid.IMG1"), Some("stored"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn voice_notes_and_documents_too_and_a_document_is_served_as_a_download() {
    let meta = FakeMeta::start().await;
    let voice = meta.add_media("2001", b"OggS voice note", "audio/ogg; codecs=opus");
    let pdf = meta.add_media("2002", b"%PDF-1.7 contrato", "application/pdf");
    let host = TestHost::sending_to(&meta).await;
    let now = host.now_secs();
    let audio = json!({ "mime_type": "audio/ogg; codecs=opus", "sha256": voice, "id": "2001", "voice": true });
    host.post_payload(&media_message("5511987654321", "wamid.V1", "audio", audio, now)).await;
    let document =
        json!({ "filename": "contrato assinado.pdf", "mime_type": "application/pdf", "sha256": pdf, "id": "2002" });
    host.post_payload(&media_message("5511987654321", "wamid.D1", "document", document, now)).await;
    assert_eq!(stored(&host, "2001").await["kind"], "audio");
    stored(&host, "2002").await;
    let response = host.http.get(format!("{}/v1/media/2002", host.base)).bearer_auth(API_KEY).send().await.unwrap();
    assert_eq!(response.headers()["content-type"], "application/octet-stream", "not rendered by a browser");
    assert_eq!(response.headers()["content-disposition"], "attachment; filename=\"contrato assinado.pdf\"");
    assert_eq!(response.bytes().await.unwrap().as_ref(), b"%PDF-1.7 contrato");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_download_that_fails_twice_is_tried_again_and_the_message_waits_for_nothing() {
    let meta = FakeMeta::start().await;
    let sha = meta.add_media("3001", PHOTO, "image/jpeg");
    meta.fail_downloads(2);
    let host = TestHost::sending_to(&meta).await;
    let image = json!({ "mime_type": "image/jpeg", "sha256": sha, "id": "3001" });
    host.post_payload(&media_message("5511987654321", "wamid.F1", "image", image, host.now_secs())).await;
    let record = stored(&host, "3001").await;
    assert_eq!((record["attempts"].as_u64(), record["last_error"].as_str()), (Some(3), None), "{record}");
    let downloads = meta.requests().into_iter().filter(|r| r.path.starts_with("/lookaside")).count();
    assert_eq!(downloads, 3);
    let view = host.conversation_of("+5511987654321").await;
    assert_eq!(view["messages"][0]["id"], "wamid.F1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupted_download_is_refused_kept_visible_and_can_be_retried() {
    let meta = FakeMeta::start().await;
    let sha = meta.add_media("4001", PHOTO, "image/jpeg");
    meta.corrupt("4001", true);
    let host = TestHost::start_with(|c| {
        c.outbound.graph_base = meta.base.clone();
        c.demo.access_token = Some("EAAtoken".into());
        c.media.max_attempts = 3;
    })
    .await;
    let image = json!({ "mime_type": "image/jpeg", "sha256": sha, "id": "4001" });
    host.post_payload(&media_message("5511987654321", "wamid.X1", "image", image, host.now_secs())).await;
    let failed = wait_for("the download to be given up", || async {
        let r = info(&host, API_KEY, "4001").await;
        (r["state"] == "failed").then_some(r)
    })
    .await;
    assert_eq!(failed["attempts"], 3);
    assert!(failed["last_error"].as_str().unwrap().contains("sha256"), "{failed}");
    let (status, err) = host.get("/v1/media/4001").await;
    assert_eq!((status, err["error"]["code"].as_str()), (409, Some("media_not_stored")));

    // Fixed at the source: a retry stores it.
    meta.corrupt("4001", false);
    let (status, r) = host.call(Method::POST, "/v1/media/4001/retry", API_KEY, None).await;
    assert_eq!((status, r["state"].as_str()), (200, Some("pending")));
    assert_eq!(stored(&host, "4001").await["size"], PHOTO.len());
}
