//! `azlog-hub source add|list|remove` on a configuration file: AzLog-style WAD sources, keys kept
//! in 0600 files under the secrets folder and never printed, comments kept.
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};

fn hub(config: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_azlog-hub"))
        .arg("source")
        .args(args)
        .arg("--config")
        .arg(config)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run azlog-hub");
    if let Some(s) = stdin {
        child.stdin.take().unwrap().write_all(s.as_bytes()).unwrap();
    }
    drop(child.stdin.take());
    child.wait_with_output().expect("wait")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

const KEY: &str = "c2VjcmV0LWFjY291bnQta2V5LWJ5dGVz"; // base64 "secret-account-key-bytes"

#[test]
fn add_list_remove_keep_keys_secret_and_the_file_valid() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("azlog-hub.toml");
    std::fs::write(
        &cfg,
        "# my settings\nstate_dir = \"st\"\n\n[metrics]\nlog_interval_secs = 0 # quiet\n",
    )
    .unwrap();

    let o = hub(
        &cfg,
        &[
            "add",
            "prod.0A1B2C3D-0000-1111-2222-333344445555",
            "wad",
            "prodlogs",
            KEY,
        ],
        None,
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(!text(&o).contains(KEY));
    let o = hub(
        &cfg,
        &[
            "add",
            "lab",
            "wad",
            "lablogs",
            "-",
            "--table",
            "WADWindowsEventLogsTable",
            "--table",
            "WADOtherTable",
        ],
        Some(KEY),
    );
    assert!(o.status.success(), "{}", text(&o));
    let o = hub(
        &cfg,
        &["add", "ci", "wad", "cilogs", "--key-env", "CI_WAD_KEY"],
        None,
    );
    assert!(o.status.success(), "{}", text(&o));

    // The file: comments kept, keys not inline, key files 0600 in <state_dir>/secrets.
    let file = std::fs::read_to_string(&cfg).unwrap();
    assert!(
        file.contains("# my settings") && file.contains("# quiet"),
        "{file}"
    );
    assert!(!file.contains(KEY), "{file}");
    let key_file = dir.path().join("st/secrets/wad-prod.key");
    assert_eq!(std::fs::read_to_string(&key_file).unwrap().trim(), KEY);
    assert_eq!(
        std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(
        std::fs::metadata(dir.path().join("st/secrets"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o700
    );

    // The poller's config reads it back: three accounts, four tables, the subscription id.
    let wad = azlog_hub::source::wad::load_wad_config(&cfg)
        .unwrap()
        .unwrap();
    let env = |v: &str| (v == "CI_WAD_KEY").then(|| KEY.to_owned());
    let specs = wad.table_specs(dir.path(), &env).unwrap();
    let ids: Vec<String> = specs.iter().map(|s| s.source_id()).collect();
    assert_eq!(
        ids,
        vec![
            "wad:prodlogs/WADWindowsEventLogsTable",
            "wad:lablogs/WADWindowsEventLogsTable",
            "wad:lablogs/WADOtherTable",
            "wad:cilogs/WADWindowsEventLogsTable"
        ]
    );
    assert_eq!(
        specs[0].extras.subscription_id.as_deref(),
        Some("0a1b2c3d-0000-1111-2222-333344445555")
    );

    let o = hub(&cfg, &["list"], None);
    assert!(o.status.success(), "{}", text(&o));
    let listing = text(&o);
    assert!(!listing.contains(KEY), "{listing}");
    assert!(listing.contains("prod\twad\tprodlogs\tWADWindowsEventLogsTable\t0a1b2c3d-0000-1111-2222-333344445555\tkey file st/secrets/wad-prod.key"), "{listing}");
    assert!(
        listing.contains("lab\twad\tlablogs\tWADWindowsEventLogsTable,WADOtherTable"),
        "{listing}"
    );
    assert!(listing.contains("key in $CI_WAD_KEY"), "{listing}");

    // Duplicates, bad keys and unknown kinds are refused without touching the file.
    let before = std::fs::read_to_string(&cfg).unwrap();
    for args in [
        vec!["add", "prod", "wad", "otherlogs", KEY],
        vec!["add", "x", "wad", "xlogs", "not base64!"],
        vec!["add", "y", "eventhubs", "ylogs", KEY],
        vec!["add", "z.notaguid", "wad", "zlogs", KEY],
    ] {
        let o = hub(&cfg, &args, None);
        assert!(!o.status.success(), "{args:?} should fail");
        assert!(!text(&o).contains(KEY));
    }
    assert_eq!(std::fs::read_to_string(&cfg).unwrap(), before);

    // Remove: the table and the key file go.
    let o = hub(&cfg, &["remove", "prod"], None);
    assert!(o.status.success(), "{}", text(&o));
    assert!(!key_file.exists());
    let listing = text(&hub(&cfg, &["list"], None));
    assert!(
        !listing.contains("prodlogs") && listing.contains("lablogs"),
        "{listing}"
    );
    assert!(!hub(&cfg, &["remove", "prod"], None).status.success());
}
