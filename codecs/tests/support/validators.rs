//! Runners for the independent validators: `lognormalizer` (Debian liblognorm-utils, strict CEF
//! parser) and PyPI `cefp` (round-trip decoder) from the shared venv. Installed by
//! `scripts/syslog-install.sh` and `scripts/python-venv.sh`. A missing tool fails the test unless
//! `AZLOG_SKIP_LOGNORM=1` / `AZLOG_SKIP_CEFP=1` is set (then the runner returns `None`).
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde_json::Value as Json;

/// The workspace root (the directory holding Cargo.lock).
pub fn workspace_root() -> PathBuf {
    let mut dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    while !dir.join("Cargo.lock").exists() {
        if !dir.pop() {
            panic!(
                "workspace root not found above {}",
                env!("CARGO_MANIFEST_DIR")
            );
        }
    }
    dir
}

fn skipped(var: &str) -> bool {
    std::env::var(var).map(|v| v == "1").unwrap_or(false)
}

/// Inserts one space after the 7th unescaped `|` (liblognorm 2.0.6 drops the first character of
/// the first extension key otherwise; bug #363, fixed upstream by PR #351, not in bookworm).
pub fn lognorm_workaround(line: &str) -> String {
    let b = line.as_bytes();
    let (mut pipes, mut i) = (0, 0);
    while i < b.len() {
        match b[i] {
            b'\\' => i += 1,
            b'|' => {
                pipes += 1;
                if pipes == 7 {
                    return format!("{} {}", &line[..=i], &line[i + 1..]);
                }
            }
            _ => {}
        }
        i += 1;
    }
    line.to_string()
}

/// Parses every line with `lognormalizer -r <cef rulebase> -e json`. Returns, per line, the
/// parsed `cef` object, or an error when lognormalizer left the line unparsed.
pub fn lognormalize(lines: &[String]) -> Option<Vec<Result<Json, String>>> {
    let bin = std::env::var("AZLOG_LOGNORMALIZER").unwrap_or_else(|_| "lognormalizer".into());
    let dir = std::env::temp_dir().join(format!("azlog-lognorm-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let rb = dir.join("cef.rb");
    std::fs::write(&rb, "version=2\nrule=:%cef:cef%\n").expect("write rulebase");
    let child = Command::new(&bin)
        .arg("-r")
        .arg(&rb)
        .args(["-e", "json"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) if skipped("AZLOG_SKIP_LOGNORM") => {
            eprintln!("lognormalizer unavailable ({e}); skipped because AZLOG_SKIP_LOGNORM=1");
            return None;
        }
        Err(e) => panic!(
            "lognormalizer ({bin}) is required: run scripts/syslog-install.sh, or set \
             AZLOG_SKIP_LOGNORM=1 to skip ({e})"
        ),
    };
    let mut input = String::new();
    for l in lines {
        assert!(!l.contains('\n'), "a CEF line contains a raw LF: {l:?}");
        input.push_str(&lognorm_workaround(l));
        input.push('\n');
    }
    let mut stdin = child.stdin.take().expect("stdin");
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let out = child.wait_with_output().expect("lognormalizer output");
    writer
        .join()
        .expect("writer")
        .expect("write to lognormalizer");
    assert!(
        out.status.success(),
        "lognormalizer failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("utf8 from lognormalizer");
    let results: Vec<Result<Json, String>> = text
        .lines()
        .map(|l| {
            let j: Json = serde_json::from_str(l).map_err(|e| format!("bad JSON {l}: {e}"))?;
            match j.get("cef") {
                Some(c) => Ok(c.clone()),
                None => Err(format!("unparsed: {l}")),
            }
        })
        .collect();
    assert_eq!(
        results.len(),
        lines.len(),
        "lognormalizer output lines != input lines"
    );
    Some(results)
}

const CEFP_SCRIPT: &str = r#"
import json, sys
from cefp import CEFParser
out = []
for line in json.load(sys.stdin):
    try:
        out.append({"ok": CEFParser.parse(line)})
    except Exception as e:
        out.append({"error": repr(e)})
json.dump(out, sys.stdout)
"#;

/// Parses every line with PyPI `cefp` (`CEFParser.parse`). Per line: the parsed object
/// (`version`, `device{vendor,product,version,event_class_id}`, `name`, `severity`,
/// `extension{}`) or the parser's error.
pub fn cefp(lines: &[String]) -> Option<Vec<Result<Json, String>>> {
    let python = std::env::var("AZLOG_VENV_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|_| workspace_root().join(".tools/venv/bin/python"));
    let child = Command::new(&python)
        .args(["-c", CEFP_SCRIPT])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) if skipped("AZLOG_SKIP_CEFP") => {
            eprintln!("venv python unavailable ({e}); skipped because AZLOG_SKIP_CEFP=1");
            return None;
        }
        Err(e) => panic!(
            "{} is required for the cefp round trip: run scripts/python-venv.sh, or set \
             AZLOG_SKIP_CEFP=1 to skip ({e})",
            python.display()
        ),
    };
    let input = serde_json::to_vec(lines).expect("json");
    let mut stdin = child.stdin.take().expect("stdin");
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().expect("cefp output");
    writer.join().expect("writer").expect("write to python");
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        if err.contains("No module named 'cefp'") && skipped("AZLOG_SKIP_CEFP") {
            return None;
        }
        panic!("cefp run failed (run scripts/python-venv.sh): {err}");
    }
    let parsed: Vec<Json> = serde_json::from_slice(&out.stdout).expect("cefp JSON");
    assert_eq!(parsed.len(), lines.len());
    Some(
        parsed
            .into_iter()
            .map(|j| match j.get("ok") {
                Some(ok) => Ok(ok.clone()),
                None => Err(j.get("error").map(|e| e.to_string()).unwrap_or_default()),
            })
            .collect(),
    )
}
