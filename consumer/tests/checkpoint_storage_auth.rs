//! The Azure Storage signer against Azurite's Table service (SharedKey and SharedKeyLite), so the
//! WAD Table poller can reuse it. Needs Azurite; AZLOG_SKIP_AZURITE=1 skips.

#[path = "checkpoint_support/mod.rs"]
mod support;

use azlog_hub::azure_storage::{
    join_url, StorageConnection, StorageCredential, StorageService, TableScheme,
};
use reqwest::{Method, Url};

fn table_endpoint(blob: &str) -> String {
    std::env::var("AZLOG_AZURITE_TABLE").unwrap_or_else(|_| blob.replace(":10000/", ":10002/"))
}

async fn send(
    cred: &StorageCredential,
    scheme: TableScheme,
    method: Method,
    url: Url,
    body: Option<String>,
) -> (u16, String) {
    let client = reqwest::Client::new();
    let mut rb = client
        .request(method, url)
        .header("accept", "application/json;odata=nometadata");
    if let Some(b) = body {
        rb = rb.header("content-type", "application/json").body(b);
    }
    let mut req = rb.build().unwrap();
    cred.authorize(&mut req, StorageService::Table(scheme))
        .unwrap();
    let resp = client.execute(req).await.unwrap();
    (
        resp.status().as_u16(),
        resp.text().await.unwrap_or_default(),
    )
}

#[tokio::test]
async fn table_shared_key_and_lite_are_accepted_bad_key_is_not() {
    let Some(blob) = support::azurite_blob() else {
        return;
    };
    let table = table_endpoint(&blob);
    let conn = StorageConnection::parse(&format!(
        "{}TableEndpoint={table};",
        support::azurite_connection_string(&blob)
    ))
    .unwrap();
    let name = format!("t{:08x}", fastrand::u32(..));
    let tables = join_url(conn.table_endpoint.as_ref().unwrap(), "Tables").unwrap();

    // Create a table with SharedKey (signs Content-Type).
    let (status, body) = send(
        &conn.credential,
        TableScheme::SharedKey,
        Method::POST,
        tables.clone(),
        Some(format!("{{\"TableName\":\"{name}\"}}")),
    )
    .await;
    assert!(status == 201 || status == 204, "{status} {body}");

    // Insert an entity with SharedKeyLite, then query it back with SharedKey.
    let entity_url = join_url(conn.table_endpoint.as_ref().unwrap(), &name).unwrap();
    let (status, body) = send(
        &conn.credential,
        TableScheme::SharedKeyLite,
        Method::POST,
        entity_url,
        Some(r#"{"PartitionKey":"p1","RowKey":"r1","Msg":"hello"}"#.into()),
    )
    .await;
    assert!(status == 201 || status == 204, "{status} {body}");
    let mut query = join_url(conn.table_endpoint.as_ref().unwrap(), &format!("{name}()")).unwrap();
    query
        .query_pairs_mut()
        .append_pair("$filter", "PartitionKey eq 'p1'")
        .append_pair("$top", "10");
    let (status, body) = send(
        &conn.credential,
        TableScheme::SharedKey,
        Method::GET,
        query.clone(),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["value"][0]["Msg"], "hello", "{body}");

    // A wrong key is refused (403), so the accepted signatures above really were checked.
    let bad = StorageCredential::shared_key("devstoreaccount1", "d3Jvbmcta2V5").unwrap();
    for scheme in [TableScheme::SharedKey, TableScheme::SharedKeyLite] {
        let (status, _) = send(&bad, scheme, Method::GET, query.clone(), None).await;
        assert_eq!(status, 403, "{scheme:?}");
    }

    // Clean up.
    let del = join_url(
        conn.table_endpoint.as_ref().unwrap(),
        &format!("Tables('{name}')"),
    )
    .unwrap();
    let (status, body) = send(
        &conn.credential,
        TableScheme::SharedKeyLite,
        Method::DELETE,
        del,
        None,
    )
    .await;
    assert_eq!(status, 204, "{body}");
}
