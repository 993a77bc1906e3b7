//! `azlog-hub map` as scripts use it: the real binary, files and stdin, every output format,
//! dead letters with reason and position, exit codes.
use std::io::Write;
use std::process::{Command, Stdio};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_azlog-hub"))
}

const SAMPLE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../examples/records/azure-sample.json"
);

/// `azlog-hub map --dead-letter DL INPUT`, run to its end.
fn map_with_dead_letters(input: &std::path::Path, dl: &std::path::Path) -> std::process::Output {
    bin()
        .args(["map", "--dead-letter"])
        .arg(dl)
        .arg(input)
        .output()
        .unwrap()
}

fn sample_count() -> usize {
    let text = std::fs::read_to_string(SAMPLE).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["records"].as_array().unwrap().len()
}

#[test]
fn ecs_output_is_one_document_per_record_with_stable_key_order() {
    let dir = tempfile::tempdir().unwrap();
    let out = bin()
        .current_dir(dir.path())
        .args(["map", SAMPLE])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), sample_count());
    for line in &lines {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert!(line.starts_with("{\"@timestamp\":\""), "{line}");
        assert_eq!(v["cloud"]["provider"], "azure", "{line}");
        assert!(v["event"]["original"].is_string());
        assert!(v["azlog"]["family"].is_string());
    }
    // Same input, same bytes: stable order (event.ingested aside, which is mapping time).
    let again = bin()
        .current_dir(dir.path())
        .args(["map", SAMPLE])
        .output()
        .unwrap();
    let strip = |s: &str| -> Vec<String> {
        s.lines()
            .map(|l| {
                let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
                v["event"].as_object_mut().unwrap().remove("ingested");
                v.to_string()
            })
            .collect()
    };
    assert_eq!(
        strip(&text),
        strip(&String::from_utf8(again.stdout).unwrap())
    );
    assert!(
        !dir.path().join("dead-letter.ndjson").exists(),
        "no dead letters, no file"
    );
}

/// `event.ingested` is the mapping time: every record's lies between the clock before the run
/// (less one scheduler tick: the CLI reads the kernel's coarse clock, which lags by at most
/// one) and the clock after it.
#[test]
fn event_ingested_is_the_time_of_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let now = azlog_mapper::deadletter::now_ns;
    let before = now();
    let out = bin()
        .current_dir(dir.path())
        .args(["map", "--no-original", SAMPLE])
        .output()
        .unwrap();
    let after = now();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let tick_ns = 20_000_000;
    let mut n = 0;
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let ingested = v["event"]["ingested"].as_str().unwrap();
        let ns = azlog_mapper::convert::time::parse_timestamp(ingested).unwrap();
        assert!(
            (before - tick_ns..=after).contains(&ns),
            "{ingested}: not between {before} - 20 ms and {after}"
        );
        n += 1;
    }
    assert_eq!(n, sample_count());
}

#[test]
fn no_original_leaves_out_only_event_original_and_other_formats_keep_it() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| -> String {
        let out = bin().current_dir(dir.path()).args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    // The ECS documents with event.ingested (mapping time) and, when asked, event.original
    // removed.
    let docs = |text: &str, drop_original: bool| -> Vec<serde_json::Value> {
        text.lines()
            .map(|l| {
                let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
                let event = v["event"].as_object_mut().unwrap();
                event.remove("ingested");
                if drop_original {
                    assert!(event.remove("original").is_some_and(|o| o.is_string()));
                }
                v
            })
            .collect()
    };
    let full = run(&["map", SAMPLE]);
    let lean = run(&["map", "--no-original", SAMPLE]);
    for l in lean.lines() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        assert!(v["event"].get("original").is_none(), "{l}");
    }
    assert_eq!(docs(&lean, false), docs(&full, true));
    assert_eq!(docs(&lean, false).len(), sample_count());
    // Splunk HEC output renders the raw record as its event body: --no-original does not
    // concern it, so the mapper still keeps the original for it.
    assert_eq!(
        run(&["map", "--format", "splunk", "--no-original", SAMPLE]),
        run(&["map", "--format", "splunk", SAMPLE])
            .lines()
            .map(|l| format!("{l}\n"))
            .collect::<String>()
    );
}

#[test]
fn every_format_renders_every_record_on_one_line() {
    let n = sample_count();
    for (format, prefix) in [
        ("cef", "CEF:0|"),
        ("leef", "LEEF:2.0|"),
        ("splunk", "{\"time\":"),
    ] {
        let out = bin()
            .args(["map", "--format", format, SAMPLE])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{format}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), n, "{format}: one line per record");
        for l in lines {
            assert!(l.starts_with(prefix), "{format}: {l}");
        }
    }
}

#[test]
fn bad_input_is_dead_lettered_with_reason_and_position_and_the_rest_maps() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.ndjson");
    std::fs::write(
        &input,
        "{\"time\":\"2024-01-01T00:00:00Z\",\"category\":\"Administrative\",\"operationName\":\"x\"}\n\
         this is not json\n\
         {\"time\": 1,,}\n\
         [1]\n\
         {'time': '2024-01-01T00:00:00Z', 'category': 'Policy', 'ok': True}\n",
    )
    .unwrap();
    let dl = dir.path().join("dl/dead.ndjson");
    let out = map_with_dead_letters(&input, &dl);
    assert!(out.status.success(), "dead letters do not fail the run");
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(stdout.lines().count(), 2, "{stdout}");
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("2 mapped, 3 dead-lettered"), "{stderr}");
    assert!(stderr.contains("single quotes 1"), "{stderr}");
    let entries: Vec<serde_json::Value> = std::fs::read_to_string(&dl)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(entries.len(), 3);
    assert_eq!(entries[0]["stage"], "envelope");
    assert_eq!(entries[0]["offset"], "2");
    assert_eq!(entries[0]["raw"], "this is not json");
    assert_eq!(entries[1]["stage"], "map");
    assert_eq!(entries[1]["offset"], "3");
    assert!(
        entries[1]["reason"]
            .as_str()
            .unwrap()
            .contains("invalid JSON"),
        "{}",
        entries[1]
    );
    assert_eq!(entries[2]["offset"], "4");
    assert!(
        entries[2]["reason"]
            .as_str()
            .unwrap()
            .contains("not a JSON object"),
        "{}",
        entries[2]
    );
    for e in &entries {
        assert_eq!(e["source"], format!("file:{}", input.display()));
    }
}

#[test]
fn stdin_works_and_a_missing_file_is_an_error() {
    let mut child = bin()
        .args(["map", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"\xEF\xBB\xBF{\"records\":[{\"category\":\"SignInLogs\",\"time\":\"8/22/2022 6:07:16 PM\"}]}")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["@timestamp"], "2022-08-22T18:07:16.000Z");

    let out = bin()
        .args(["map", "/nonexistent/file.json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/file.json"));
}

/// Output is written in blocks: more than one block's worth of lines all arrive, in order,
/// and the lines of an input that was read before a later input fails are still printed.
#[test]
fn every_line_arrives_in_order_and_lines_before_an_error_are_printed() {
    let dir = tempfile::tempdir().unwrap();
    let many = dir.path().join("many.ndjson");
    let n = 3000;
    let lines: String = (0..n)
        .map(|i| {
            format!(
                "{{\"category\":\"Other\",\"time\":\"2022-08-22T18:07:16Z\",\"properties\":{{\"seq\":{i}}}}}\n"
            )
        })
        .collect();
    std::fs::write(&many, lines).unwrap();
    let out = bin()
        .current_dir(dir.path())
        .args(["map", "--no-original"])
        .arg(&many)
        .arg("/nonexistent/second.json")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.len() > 1 << 16, "{} bytes", out.stdout.len());
    let seqs: Vec<i64> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v.pointer("/azure/platformlogs/properties/seq")
                .and_then(serde_json::Value::as_i64)
                .unwrap_or_else(|| panic!("no seq in {l}"))
        })
        .collect();
    assert_eq!(seqs, (0..n).collect::<Vec<_>>());
}

/// Records of different families interleaved, over several reads (batches) of the input
/// and with bad lines among them: `map` maps each read family by family, yet every line comes
/// out in input order, mapped as that record alone maps, and each dead letter keeps its line.
#[test]
fn interleaved_families_come_out_in_input_order_as_each_record_maps_alone() {
    let dir = tempfile::tempdir().unwrap();
    let templates = [
        r#"{"time":"2022-08-22T18:07:16Z","category":"AuditEvent","operationName":"SecretGet","resourceId":"/SUBSCRIPTIONS/S1/RESOURCEGROUPS/RG/PROVIDERS/MICROSOFT.KEYVAULT/VAULTS/KV1","callerIpAddress":"10.0.0.4","properties":{"id":"https://kv1.vault.azure.net/secrets/s","seq":SEQ}}"#,
        r#"{"time":"2022-08-22T18:07:16Z","category":"SignInLogs","operationName":"Sign-in activity","resultType":"0","properties":{"userPrincipalName":"alice@contoso.com","ipAddress":"203.0.113.9","seq":SEQ}}"#,
        r#"{"time":"2022-08-22T18:07:16Z","category":"Administrative","operationName":"Microsoft.Compute/virtualMachines/write","resultType":"Success","caller":"bob@contoso.com","properties":{"seq":SEQ}}"#,
        r#"{"time":"2022-08-22T18:07:16Z","category":"kube-audit","operationName":"Microsoft.ContainerService/managedClusters/diagnosticLogs/Read","properties":{"log":"{\"verb\":\"get\",\"user\":{\"username\":\"u\"}}","seq":SEQ}}"#,
        r#"{"category":"SomethingNew","operationName":"Unknown/op","properties":{"seq":SEQ}}"#,
    ];
    // The family each template maps to, each mapped alone.
    let families: Vec<String> = templates
        .iter()
        .map(|t| {
            let one = dir.path().join("one.json");
            std::fs::write(&one, t.replace("SEQ", "0")).unwrap();
            let out = bin()
                .current_dir(dir.path())
                .arg("map")
                .arg(&one)
                .output()
                .unwrap();
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            v["azlog"]["family"].as_str().unwrap().to_owned()
        })
        .collect();
    let distinct: std::collections::HashSet<&String> = families.iter().collect();
    assert_eq!(distinct.len(), templates.len(), "{families:?}");
    // Over 2 MiB (three reads of 1 MiB), one template after another, a bad line now and then.
    let (mut text, mut good, mut bad_lines) = (String::new(), Vec::new(), Vec::new());
    for i in 0..12_000 {
        if i % 997 == 500 {
            text.push_str("{\"time\": 1,,}\n");
            bad_lines.push((i + 1).to_string());
            continue;
        }
        let t = i % templates.len();
        let line = templates[t].replace("SEQ", &i.to_string());
        text.push_str(&line);
        text.push('\n');
        good.push((line, t));
    }
    assert!(text.len() > 1 << 21, "{} bytes", text.len());
    let input = dir.path().join("mixed.ndjson");
    std::fs::write(&input, text).unwrap();
    let dl = dir.path().join("dead.ndjson");
    let out = map_with_dead_letters(&input, &dl);
    assert!(out.status.success());
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), good.len());
    for (line, (original, t)) in lines.iter().zip(&good) {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["event"]["original"].as_str(), Some(original.as_str()));
        assert_eq!(
            v["azlog"]["family"].as_str(),
            Some(families[*t].as_str()),
            "{line}"
        );
    }
    let offsets: Vec<String> = std::fs::read_to_string(&dl)
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["offset"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(offsets, bad_lines);
    let stderr = String::from_utf8(out.stderr).unwrap();
    let summary = format!("{} mapped, {} dead-lettered", good.len(), bad_lines.len());
    assert!(stderr.contains(&summary), "{stderr}");
}

#[test]
fn a_schema_overlay_changes_the_mapping_without_recompiling() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("custom.toml"),
        "[family]\nname = \"custom.thing\"\ndataset = \"custom.things\"\npriority = 1000\n\
         [[detect]]\nwhen = [{ path = \"category\", equals = [\"MyCustomCategory\"] }]\n\
         [[field]]\nto = \"event.action\"\nfrom = [\"what\"]\n",
    )
    .unwrap();
    let mut child = bin()
        .arg("map")
        .arg("--schemas")
        .arg(dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"{\"category\":\"MyCustomCategory\",\"what\":\"did-it\",\"time\":\"2024-01-01T00:00:00Z\"}")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["event"]["dataset"], "custom.things");
    assert_eq!(v["event"]["action"], "did-it");

    std::fs::write(
        dir.path().join("broken.toml"),
        "[family]\nname = \"x\"\nbogus_key = 1\n",
    )
    .unwrap();
    let out = bin()
        .arg("map")
        .arg("--schemas")
        .arg(dir.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("broken.toml:"),
        "schema errors name the file and line: {err}"
    );
}

/// `--jobs N` changes the speed, never the output: over several reads of mixed families with
/// bad lines (one not UTF-8) and an input that fails at the end, 1, 2 and 5 mapping threads
/// write the same lines, the same dead letters, the same summary and the same exit code.
#[test]
fn mapping_threads_change_nothing_but_speed() {
    let dir = tempfile::tempdir().unwrap();
    let templates = [
        r#"{"time":"2022-08-22T18:07:16Z","category":"AuditEvent","operationName":"SecretGet","resourceId":"/SUBSCRIPTIONS/S1/RESOURCEGROUPS/RG/PROVIDERS/MICROSOFT.KEYVAULT/VAULTS/KV1","properties":{"seq":SEQ}}"#,
        r#"{"time":"2022-08-22T18:07:16Z","category":"SignInLogs","resultType":"50126","properties":{"userPrincipalName":"alice@contoso.com","ipAddress":"203.0.113.9","seq":SEQ}}"#,
        r#"{"category":"SomethingNew","operationName":"Unknown/op","properties":{"seq":SEQ}}"#,
    ];
    let mut text = Vec::new();
    for i in 0..24_000 {
        match i % 1_499 {
            700 => text.extend_from_slice(b"{\"time\": 1,,}\n"),
            701 => text.extend_from_slice(b"{\"category\":\"\xff\xfe\"}\n"),
            _ => {
                text.extend_from_slice(templates[i % 3].replace("SEQ", &i.to_string()).as_bytes());
                text.push(b'\n');
            }
        }
    }
    assert!(
        text.len() > 3 << 20,
        "{} bytes: four reads or more",
        text.len()
    );
    let input = dir.path().join("mixed.ndjson");
    std::fs::write(&input, text).unwrap();
    type Run = (
        Option<i32>,
        Vec<serde_json::Value>,
        Vec<serde_json::Value>,
        String,
    );
    let runs: Vec<Run> = ["1", "2", "5"]
        .iter()
        .map(|jobs| {
            let dl = dir.path().join(format!("dead-{jobs}.ndjson"));
            let out = bin()
                .args(["map", "--jobs", jobs, "--dead-letter"])
                .arg(&dl)
                .arg(&input)
                .arg(dir.path().join("missing.json"))
                .output()
                .unwrap();
            let dead = std::fs::read_to_string(&dl).unwrap();
            (
                out.status.code(),
                mask_run_times(&String::from_utf8(out.stdout).unwrap()),
                mask_run_times(&dead),
                String::from_utf8(out.stderr).unwrap(),
            )
        })
        .collect();
    let (code, stdout, dead, stderr) = &runs[0];
    assert_eq!(*code, Some(2), "{stderr}");
    assert!(stderr.contains("missing.json"), "{stderr}");
    assert_eq!(stdout.len(), 24_000 - 2 * 16);
    assert_eq!(dead.len(), 2 * 16);
    for (jobs, run) in ["2", "5"].iter().zip(&runs[1..]) {
        assert_eq!(run.0, *code, "--jobs {jobs}");
        assert!(run.1 == *stdout, "--jobs {jobs}: other lines");
        assert!(run.2 == *dead, "--jobs {jobs}: other dead letters");
        assert_eq!(run.3, *stderr, "--jobs {jobs}");
    }
}

/// The documents of `text` (one per line) without the times of the run: `event.ingested`,
/// `@timestamp` where it fell back to it, a dead letter's `time`.
fn mask_run_times(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .map(|line| {
            let mut v: serde_json::Value = serde_json::from_str(line).unwrap();
            let fallback = v.pointer("/azlog/timestamp_fallback").is_some();
            let doc = v.as_object_mut().unwrap();
            if fallback {
                doc.remove("@timestamp");
            }
            if let Some(event) = doc.get_mut("event").and_then(|e| e.as_object_mut()) {
                event.remove("ingested");
            }
            if doc.contains_key("reason") {
                doc.remove("time");
            }
            v
        })
        .collect()
}

/// A live stream: each line comes out as soon as it maps, while stdin stays open; when the
/// reader of the output goes away, `map` ends quietly even though it is still waiting on
/// stdin (with one mapping thread and with several).
#[test]
fn a_live_stream_is_mapped_as_it_comes_and_a_closed_output_ends_the_run() {
    use std::io::{BufRead, BufReader};
    use std::sync::mpsc;
    use std::time::Duration;
    let record = b"{\"category\":\"SignInLogs\",\"time\":\"2022-08-22T18:07:16Z\"}\n";
    for jobs in ["1", "3"] {
        let mut child = bin()
            .args(["map", "--no-original", "--jobs", jobs, "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        stdin.write_all(record).unwrap();
        stdin.flush().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout);
            let mut first = String::new();
            lines.read_line(&mut first).unwrap();
            tx.send(first).unwrap();
            // `lines` (the only reader of the output) is dropped here.
        });
        let first = rx
            .recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|_| panic!("--jobs {jobs}: no line while stdin stays open"));
        let v: serde_json::Value = serde_json::from_str(&first).unwrap();
        assert_eq!(v["@timestamp"], "2022-08-22T18:07:16.000Z");
        // Give the reading thread time to drop the pipe, then map one more record: its
        // write fails, and the run ends although stdin is still open.
        std::thread::sleep(Duration::from_millis(200));
        stdin.write_all(record).unwrap();
        stdin.flush().unwrap();
        let mut status = None;
        for _ in 0..200 {
            if let Some(s) = child.try_wait().unwrap() {
                status = Some(s);
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let Some(status) = status else {
            child.kill().ok();
            panic!("--jobs {jobs}: still running 10 s after its output closed");
        };
        assert!(status.success(), "--jobs {jobs}: {status}");
        drop(stdin);
    }
}
