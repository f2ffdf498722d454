//! Identity end to end: contact import in old-CRM formats, WhatsApp
//! senders matched to them across quirks, companies by email domain,
//! duplicate detection with evidence, merge and undo.

mod support;

use reqwest::Method;
use serde_json::{Value, json};
use support::*;

async fn import(host: &TestHost, body: impl Into<Vec<u8>>, content_type: &str) -> Value {
    let resp = host
        .http
        .post(format!("{}/v1/contacts/import", host.base))
        .bearer_auth(API_KEY)
        .header("content-type", content_type)
        .body(body.into())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    let job: Value = resp.json().await.unwrap();
    let id = job["id"].as_str().unwrap().to_string();
    wait_for("the import to finish", || async {
        let (_, j) = host.get(&format!("/v1/imports/{id}")).await;
        (j["status"] == "done").then_some(j)
    })
    .await
}

/// A spreadsheet saved as "CSV" by Excel on Windows in Brazil: `;`
/// between columns, Windows-1252 text, numbers as people type them — a
/// national number in area code 55 (Rio Grande do Sul, the digits of
/// Brazil's country code), a glued `+1812-…`, an extension.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_semicolon_windows_1252_export_with_national_numbers_imports() {
    let host = TestHost::start().await;
    let mut csv = b"phone;name;tags\r\n".to_vec();
    csv.extend_from_slice(b"(55) 99876-5432;Jo\xE3o Gon\xE7alves;ga\xFAcho\r\n");
    csv.extend_from_slice(b"55 3212-3456;Loja Caxias;\r\n");
    csv.extend_from_slice(b"+1812-576-8426;Sam;us\r\n");
    csv.extend_from_slice(b"(11) 98765-4321 ramal 12;Ana;\r\n");
    let job = import(&host, csv, "text/csv").await;
    assert_eq!(job["format"], json!({ "delimiter": ";", "encoding": "windows-1252" }), "{job}");
    assert_eq!((job["created"].as_u64(), job["failed"].as_u64()), (Some(4), Some(0)), "{job}");
    let joao = host.contact("+5555998765432").await.expect("a national number in area code 55");
    assert_eq!((joao["name"].as_str(), joao["tags"].clone()), (Some("João Gonçalves"), json!(["gaúcho"])));
    assert!(host.contact("+555532123456").await.is_some(), "a landline in area code 55");
    assert!(host.contact("+18125768426").await.is_some(), "+1 glued to the area code");
    assert!(host.contact("+5511987654321").await.is_some(), "the extension dropped");
    assert_eq!(job["warnings"], json!([]), "nothing here reads two ways: {job}");
}

/// A Brazilian tenant's list that mixes countries, headed in Portuguese
/// as their spreadsheet heads it: each row's number is read in its own
/// `país` (libphonenumber's `parse(text, region)`), the rest in the
/// tenant's region; an Italian mobile written nationally starts with 39,
/// an Indian one with 91 — neither is read as a country code.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_list_of_several_countries_headed_in_portuguese_reads_each_row_in_its_region() {
    let host = TestHost::start().await;
    let mut csv = b"Telefone;Nome;Pa\xEDs\r\n".to_vec();
    csv.extend_from_slice(b"391 234 5678;Giulia;IT\r\n");
    csv.extend_from_slice(b"91234 56789;Aarav;in\r\n");
    csv.extend_from_slice(b"(11) 98765-4321;Ana;\r\n");
    csv.extend_from_slice(b"030 1234567;Jonas;Alemanha\r\n");
    let job = import(&host, csv, "text/csv").await;
    assert_eq!(job["format"], json!({ "delimiter": ";", "encoding": "windows-1252" }), "{job}");
    assert_eq!((job["created"].as_u64(), job["failed"].as_u64()), (Some(3), Some(1)), "{job}");
    assert_eq!(host.contact("+393912345678").await.expect("Italian mobile")["name"], "Giulia");
    assert_eq!(host.contact("+919123456789").await.expect("Indian mobile")["name"], "Aarav");
    assert_eq!(host.contact("+5511987654321").await.expect("the tenant's region")["name"], "Ana");
    assert_eq!(job["errors"][0]["row"], 4);
    assert!(job["errors"][0]["error"].as_str().unwrap().contains("two-letter"), "{job}");
}

/// A German tenant's export with a Berlin number written with its country
/// code but no `+`: libphonenumber reads it as a (valid) national number,
/// and it is also a valid number read internationally. Imported as
/// libphonenumber reads it, and reported, not silently guessed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_number_that_reads_two_ways_is_imported_with_a_warning() {
    let host = TestHost::start().await;
    let (status, tenant) =
        host.admin(Method::PATCH, "/admin/v1/tenants/demo", Some(json!({ "default_region": "DE" }))).await;
    assert_eq!(status, 200, "{tenant}");
    let job = import(&host, "phone,name\n49 30 12345678,Jonas\n030 98765432,Lena\n", "text/csv").await;
    assert_eq!((job["created"].as_u64(), job["failed"].as_u64()), (Some(2), Some(0)), "{job}");
    let warnings = job["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 1, "{job}");
    assert_eq!((warnings[0]["row"].as_u64(), warnings[0]["phone"].as_str()), (Some(1), Some("49 30 12345678")));
    let warning = warnings[0]["error"].as_str().unwrap();
    assert!(warning.contains("+49493012345678") && warning.contains("+493012345678"), "{warning}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_old_crm_export_imports_and_whatsapp_senders_find_their_contacts() {
    let host = TestHost::start().await;
    host.post_json("/v1/companies", json!({ "name": "Acme Brasil", "domain": "acme.com.br" })).await;
    let csv = "Name,Phone,Email,Company,Tags\n\
        Ana Souza,(11) 8765-4321,ana@acme.com.br,,vip;lead\n\
        Bruno Lima,0055 21 99876 5432,bruno@gmail.com,Lima & Filhos,\n\
        Lucía Pérez,+52 55 1234 5678,lucia@example.mx,,\n\
        Martín Gómez,+54 11 2345-6789,,,\n\
        Broken,not a phone,,,\n\
        Ana again,+55 11 98765-4321,,,returning\n";
    let job = import(&host, csv, "text/csv").await;
    assert_eq!(
        (job["total"].as_u64(), job["created"].as_u64(), job["updated"].as_u64(), job["failed"].as_u64()),
        (Some(6), Some(4), Some(1), Some(1)),
        "{job}"
    );
    assert_eq!(job["errors"][0]["row"], 5);
    assert!(job["errors"][0]["error"].as_str().unwrap().contains("not a phone"));

    let ana = host.contact("+5511987654321").await.expect("the old 8-digit mobile, brought up to date");
    assert_eq!(ana["tags"], json!(["lead", "returning", "vip"]));
    let (_, acme) = host.get("/v1/companies").await;
    let acme_id =
        acme["companies"].as_array().unwrap().iter().find(|c| c["name"] == "Acme Brasil").unwrap()["id"].clone();
    assert_eq!(ana["company_id"], acme_id, "linked by email domain");
    let bruno = host.contact("+5521998765432").await.unwrap();
    let lima = acme["companies"].as_array().unwrap().iter().find(|c| c["name"] == "Lima & Filhos").unwrap();
    assert_eq!(bruno["company_id"], lima["id"], "company by name from the column");
    assert_eq!(lima["domain"], Value::Null, "gmail.com is no company's domain");

    // WhatsApp senders in their own forms: no new contacts.
    for (wa_id, id) in [("551187654321", "wamid.Q1"), ("5215512345678", "wamid.Q2"), ("5491123456789", "wamid.Q3")] {
        host.post_payload(&text_message(wa_id, "WA name", id, "oi", host.now_secs())).await;
    }
    host.settle().await;
    let (_, page) = host.get("/v1/contacts?limit=100").await;
    assert_eq!(page["contacts"].as_array().unwrap().len(), 4, "every sender matched an imported contact: {page}");
    let martin = page["contacts"].as_array().unwrap().iter().find(|c| c["name"] == "Martín Gómez").unwrap();
    assert_eq!(martin["stats"]["inbound_messages"], 1);

    // JSON works too.
    let job = import(
        &host,
        r#"[{"phone": "+1 650 253 0000", "name": "Sam", "tags": ["us"]}, {"phone": "12"}]"#,
        "application/json",
    )
    .await;
    assert_eq!((job["created"].as_u64(), job["failed"].as_u64()), (Some(1), Some(1)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_rows_import_with_progress() {
    let host = TestHost::start().await;
    let mut csv = String::from("phone,name\n");
    for i in 0..3000 {
        csv.push_str(&format!("+55 11 9{:04}-{:04},Cliente {i}\n", 1000 + i / 1000, i % 10000));
    }
    let job = import(&host, csv.as_str(), "text/csv").await;
    assert_eq!(
        (job["created"].as_u64(), job["failed"].as_u64(), job["processed"].as_u64()),
        (Some(3000), Some(0), Some(3000))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicates_are_suggested_with_evidence_merged_undone_and_dismissed() {
    let host = TestHost::start().await;
    let (_, co) = host.post_json("/v1/companies", json!({ "name": "Acme" })).await;
    let (_, a) = host
        .post_json("/v1/contacts", json!({ "phone": "+5511911112222", "name": "Ana Souza", "company_id": co["id"] }))
        .await;
    let (_, b) = host
        .post_json(
            "/v1/contacts",
            json!({ "phone": "+5511933334444", "name": "Ana Sousa", "company_id": co["id"], "email": "ana@acme.com" }),
        )
        .await;
    let (_, c) = host
        .post_json("/v1/contacts", json!({ "phone": "+5511955556666", "name": "Carlos", "email": "ANA@acme.com" }))
        .await;
    let (_, d) = host.post_json("/v1/contacts", json!({ "phone": "+5511911112223", "name": "Ana Souza" })).await;
    host.post_json("/v1/deals", json!({ "contact_id": b["id"], "name": "B deal", "stage": "lead" })).await;
    host.post_payload(&text_message("5511933334444", "Ana", "wamid.D1", "oi", host.now_secs())).await;
    host.settle().await;

    let (_, dup) = host.get("/v1/duplicates").await;
    let pairs: Vec<(String, String, Vec<String>)> = dup["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            let mut ids = [x["a"]["id"].as_str().unwrap().to_string(), x["b"]["id"].as_str().unwrap().to_string()];
            ids.sort();
            (
                ids[0].clone(),
                ids[1].clone(),
                x["evidence"].as_array().unwrap().iter().map(|e| e.as_str().unwrap().to_string()).collect(),
            )
        })
        .collect();
    let has = |x: &Value, y: &Value| {
        let mut ids = [x["id"].as_str().unwrap(), y["id"].as_str().unwrap()];
        ids.sort();
        pairs.iter().find(|p| p.0 == ids[0] && p.1 == ids[1]).map(|p| p.2.clone())
    };
    assert!(has(&a, &b).unwrap().iter().any(|e| e.contains("same company")), "{dup}");
    assert!(has(&b, &c).unwrap().iter().any(|e| e.contains("same email")));
    assert!(has(&a, &d).is_none(), "a look-alike number and a common name are not evidence");

    // Dismiss one pair: it is not suggested again.
    let (status, _) =
        host.call(Method::POST, "/v1/duplicates/dismiss", API_KEY, Some(json!({ "a": b["id"], "b": c["id"] }))).await;
    assert_eq!(status, 204);
    let (_, dup) = host.get("/v1/duplicates").await;
    assert_eq!(dup["candidates"].as_array().unwrap().len(), 1);

    // Merge b into a: conversations, messages, deals move.
    let (status, merge) =
        host.staff("lead", "/v1/duplicates/merge", Some(json!({ "survivor": a["id"], "merged": b["id"] }))).await;
    assert_eq!(status, 200, "{merge}");
    assert_eq!(host.conversations(a["id"].as_str().unwrap()).await.len(), 1);
    let (_, deals) = host.get(&format!("/v1/deals?contact_id={}", a["id"].as_str().unwrap())).await;
    assert_eq!(deals["deals"].as_array().unwrap().len(), 1);
    let (_, merged) = host.get(&format!("/v1/contacts/{}", b["id"].as_str().unwrap())).await;
    assert_eq!(merged["merged_into"], a["id"]);
    let (_, survivor) = host.get(&format!("/v1/contacts/{}", a["id"].as_str().unwrap())).await;
    assert_eq!(survivor["email"], "ana@acme.com", "missing fields taken from the merged record");
    // The merged contact's number now finds the survivor.
    host.post_payload(&text_message("5511933334444", "Ana", "wamid.D2", "de novo", host.now_secs())).await;
    host.settle().await;
    let (_, found) = host.get("/v1/contacts?q=%2B5511933334444").await;
    assert_eq!(found["contacts"][0]["id"], a["id"]);
    assert_eq!(
        host.conversations(a["id"].as_str().unwrap()).await[0]["inbound_messages"],
        2,
        "the same conversation continues"
    );

    // Undo: both records return, the moved conversation and deal go back.
    let (status, undone) =
        host.staff("lead", &format!("/v1/merges/{}/undo", merge["id"].as_str().unwrap()), None).await;
    assert_eq!(status, 200, "{undone}");
    assert!(undone["undone_at"].is_i64());
    let (_, b_again) = host.get(&format!("/v1/contacts/{}", b["id"].as_str().unwrap())).await;
    assert_eq!(b_again["merged_into"], Value::Null);
    assert_eq!(host.conversations(b["id"].as_str().unwrap()).await.len(), 1);
    let (_, deals) = host.get(&format!("/v1/deals?contact_id={}", b["id"].as_str().unwrap())).await;
    assert_eq!(deals["deals"].as_array().unwrap().len(), 1);
    let (status, _) = host.staff("lead", &format!("/v1/merges/{}/undo", merge["id"].as_str().unwrap()), None).await;
    assert_eq!(status, 409, "undone once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn companies_and_deals_have_crud_and_an_inbound_attaches_to_the_open_deal() {
    let host = TestHost::start().await;
    let (_, co) = host.post_json("/v1/companies", json!({ "name": "Acme", "domain": "acme.com" })).await;
    let (status, body) = host.post_json("/v1/companies", json!({ "name": "Acme copy", "domain": "ACME.com" })).await;
    assert_eq!((status, body["error"]["code"].as_str()), (409, Some("already_exists")), "one company per domain");
    let (status, patched) = host
        .call(
            Method::PATCH,
            &format!("/v1/companies/{}", co["id"].as_str().unwrap()),
            API_KEY,
            Some(json!({ "name": "Acme Inc" })),
        )
        .await;
    assert_eq!((status, patched["name"].as_str()), (200, Some("Acme Inc")));
    let (_, contact) =
        host.post_json("/v1/contacts", json!({ "phone": "+5511987654321", "email": "ana@acme.com" })).await;
    assert_eq!(contact["company_id"], co["id"], "linked by email domain");
    let (status, _) =
        host.call(Method::DELETE, &format!("/v1/companies/{}", co["id"].as_str().unwrap()), API_KEY, None).await;
    assert_eq!(status, 409, "contacts are linked");

    let (_, old) =
        host.post_json("/v1/deals", json!({ "contact_id": contact["id"], "name": "Old", "stage": "lead" })).await;
    let (_, new) = host
        .post_json(
            "/v1/deals",
            json!({ "contact_id": contact["id"], "name": "New", "stage": "proposal", "amount_minor": 5000 }),
        )
        .await;
    assert_eq!(new["company_id"], co["id"]);
    let (status, won) = host
        .call(
            Method::PATCH,
            &format!("/v1/deals/{}", old["id"].as_str().unwrap()),
            API_KEY,
            Some(json!({ "status": "won" })),
        )
        .await;
    assert_eq!((status, won["status"].as_str()), (200, Some("won")));
    host.post_payload(&payload("text.json", host.now_secs())).await;
    host.settle().await;
    let view = host.conversation_of("+5511987654321").await;
    assert_eq!(view["conversation"]["deal_id"], new["id"], "the most recent open deal");
    assert_eq!(view["decisions"][0]["decision"]["tags"], json!(["late-stage"]), "the deal stage reached the router");
    let (status, _) =
        host.call(Method::DELETE, &format!("/v1/deals/{}", old["id"].as_str().unwrap()), API_KEY, None).await;
    assert_eq!(status, 204);
    assert_eq!(host.get(&format!("/v1/deals/{}", old["id"].as_str().unwrap())).await.0, 404);
}
