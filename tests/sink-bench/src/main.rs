//! Sink benchmarks (single thread, so the figures are per core):
//!
//! 1. host→plugin batch call overhead: records/s through the no-op `test-sink` plugin via
//!    the FFI `write_batch` call (loaded the way the host loads plugins);
//! 2. Splunk HEC encoding (`azlog_codecs::hec`) records/s and MB/s, original and ECS bodies.
//!
//! usage: cargo build --release -p azlog-sink-bench -p azlog-test-sink
//!        target/release/azlog-sink-bench [--plugin-dir DIR] [--records N] [--batch B] [--ffi-records N]
//! The plugin dir defaults to the directory of this executable (target/release).
use std::path::PathBuf;
use std::time::Instant;

use abi_stable::library::lib_header_from_path;
use abi_stable::std_types::{RResult, RSlice, RStr, RString, RVec};
use anyhow::{anyhow, Context};
use azlog_codecs::hec::{EventBody, HecEncoder};
use azlog_plugin_api::{Field, Position, Record, SinkPluginRef, Value};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let n: usize = arg("--records").map_or(Ok(200_000), |s| s.parse())?;
    let batch: usize = arg("--batch").map_or(Ok(500), |s| s.parse())?;
    let ffi_n: usize = arg("--ffi-records").map_or(Ok(50_000_000), |s| s.parse())?;
    let dir = match arg("--plugin-dir") {
        Some(d) => PathBuf::from(d),
        None => std::env::current_exe()?
            .parent()
            .ok_or_else(|| anyhow!("no exe dir"))?
            .to_path_buf(),
    };
    let records: Vec<Record> = (0..batch).map(sample_record).collect();
    let avg_original = records.iter().map(|r| r.original.len()).sum::<usize>() / records.len();
    println!(
        "records: {n} in batches of {batch}; sample record: {} fields, original {} bytes",
        records[0].fields.len(),
        avg_original
    );

    // 1. FFI call overhead.
    let lib = dir.join(format!(
        "{}azlog_test_sink{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    ));
    // Same loading path as the host's loader (abi_stable header + layout-checked root module).
    let module = lib_header_from_path(&lib)
        .and_then(|h| h.init_root_module::<SinkPluginRef>())
        .with_context(|| format!("load {}", lib.display()))?;
    let mut sink = match (module.open())(RStr::from_str("{}")) {
        RResult::ROk(s) => s,
        RResult::RErr(e) => return Err(anyhow!("open: {e}")),
    };
    let ffi_rounds = ffi_n.div_ceil(batch);
    let t = Instant::now();
    for _ in 0..ffi_rounds {
        match sink.write_batch(RSlice::from_slice(&records)) {
            RResult::ROk(r) if r.accepted() == batch as u64 => {}
            other => return Err(anyhow!("unexpected report {other:?}")),
        }
    }
    let secs = t.elapsed().as_secs_f64();
    report(
        "ffi write_batch (no-op plugin)",
        ffi_rounds * batch,
        t,
        None,
    );
    println!(
        "{:40} {:>12.0} ns per write_batch call ({batch} records)",
        "",
        secs * 1e9 / ffi_rounds as f64
    );

    let rounds = n.div_ceil(batch);

    // 2. HEC encoding.
    for (label, body) in [
        ("HEC encode, original body", EventBody::Original),
        (
            "HEC encode, ECS body",
            EventBody::Ecs {
                include_original: false,
            },
        ),
    ] {
        let mut enc = HecEncoder::with_defaults()?;
        enc.body = body;
        enc.index = Some("azure".into());
        let mut buf = Vec::with_capacity(batch * 4096);
        let mut ends = Vec::with_capacity(batch);
        let mut bytes = 0usize;
        let t = Instant::now();
        for _ in 0..rounds {
            buf.clear();
            ends.clear();
            for r in &records {
                enc.encode(r, &mut buf, &mut ends)
                    .map_err(|e| anyhow!("encode: {e}"))?;
            }
            bytes += buf.len();
        }
        report(label, rounds * batch, t, Some(bytes));
    }
    Ok(())
}

fn report(label: &str, n: usize, t: Instant, bytes: Option<usize>) {
    let secs = t.elapsed().as_secs_f64();
    let rate = n as f64 / secs;
    match bytes {
        Some(b) => println!(
            "{label:40} {rate:>12.0} records/s  {:>8.1} MB/s  ({n} in {secs:.3}s)",
            b as f64 / secs / 1e6
        ),
        None => println!(
            "{label:40} {rate:>12.0} records/s  {:>8.1} ns/record  ({n} in {secs:.3}s)",
            secs * 1e9 / n as f64
        ),
    }
}

/// A mapped Entra ID sign-in record of typical size (about 25 fields, 1.5 KB original).
fn sample_record(i: usize) -> Record {
    let s = |k: &str, v: String| Field {
        key: RString::from(k),
        value: Value::Str(RString::from(v)),
    };
    let list = |k: &str, v: &[&str]| Field {
        key: RString::from(k),
        value: Value::List(RVec::from(
            v.iter().map(|x| RString::from(*x)).collect::<Vec<_>>(),
        )),
    };
    let user = format!("user{i}@contoso.com");
    let ip = format!("10.{}.{}.{}", (i >> 16) & 255, (i >> 8) & 255, i & 255);
    let original = format!(
        r#"{{"time":"2024-05-01T12:00:{:02}.1234567Z","resourceId":"/tenants/7e1e/providers/Microsoft.aadiam","operationName":"Sign-in activity","operationVersion":"1.0","category":"SignInLogs","tenantId":"7e1e0000-0000-0000-0000-000000000000","resultType":"0","resultSignature":"None","durationMs":0,"callerIpAddress":"{ip}","correlationId":"c0rr-{i}","identity":"User {i}","Level":4,"location":"DE","properties":{{"id":"sig-{i}","createdDateTime":"2024-05-01T12:00:00Z","userDisplayName":"User {i}","userPrincipalName":"{user}","userId":"u-{i}","appId":"00000002-0000-0ff1-ce00-000000000000","appDisplayName":"Office 365 Exchange Online","ipAddress":"{ip}","clientAppUsed":"Browser","userAgent":"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36","conditionalAccessStatus":"success","isInteractive":true,"status":{{"errorCode":0,"failureReason":"Other."}},"deviceDetail":{{"deviceId":"","operatingSystem":"Windows10","browser":"Chrome 124.0.0"}},"location":{{"city":"Berlin","state":"Berlin","countryOrRegion":"DE","geoCoordinates":{{"latitude":52.52,"longitude":13.40}}}},"riskDetail":"none","riskLevelAggregated":"none","riskState":"none","authenticationRequirement":"singleFactorAuthentication"}}}}"#,
        i % 60
    );
    let fields = vec![
        s("event.dataset", "azure.signinlogs".into()),
        s("event.kind", "event".into()),
        list("event.category", &["authentication"]),
        list("event.type", &["start"]),
        s("event.action", "Sign-in activity".into()),
        s("event.outcome", "success".into()),
        Field {
            key: RString::from("event.severity"),
            value: Value::Int(2),
        },
        s("event.id", format!("sig-{i}")),
        s("source.ip", ip.clone()),
        s("user.name", user.clone()),
        s("user.id", format!("u-{i}")),
        s("user.email", user),
        s(
            "user_agent.original",
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/124.0".into(),
        ),
        s("cloud.provider", "azure".into()),
        s(
            "cloud.account.id",
            "7e1e0000-0000-0000-0000-000000000000".into(),
        ),
        s(
            "azure.tenant_id",
            "7e1e0000-0000-0000-0000-000000000000".into(),
        ),
        s("azure.correlation_id", format!("c0rr-{i}")),
        s("azure.category", "SignInLogs".into()),
        s(
            "azure.resource.id",
            "/tenants/7e1e/providers/Microsoft.aadiam".into(),
        ),
        s(
            "azure.signinlogs.properties.app_display_name",
            "Office 365 Exchange Online".into(),
        ),
        s(
            "azure.signinlogs.properties.client_app_used",
            "Browser".into(),
        ),
        s(
            "azure.signinlogs.properties.conditional_access_status",
            "success".into(),
        ),
        s("source.geo.country_iso_code", "DE".into()),
        s("source.geo.city_name", "Berlin".into()),
        s("message", "Sign-in activity".into()),
    ];
    Record::from_fields(
        1_714_564_800_000_000_000 + i as i64 * 1_000_000,
        fields,
        RString::from(original),
        Position::default(),
    )
}
