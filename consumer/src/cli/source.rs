//! `azlog-hub source add|list|remove`: AzLog-style management of WAD sources in the
//! configuration file (`[[source.wad.account]]` tables), keeping the file's comments and layout.
//!
//! * `source add NAME wad ACCOUNT [KEY]`: `NAME.SUBSCRIPTIONID` puts the subscription id into the
//!   records (as AzLog did). The key (from the argument, or stdin when absent or `-`) is written
//!   to a file of its own (mode 0600) in the secrets folder (`[source.wad] secrets_dir`, default
//!   `<state_dir>/secrets`) and the account table refers to it with `key_file`; `--key-env VAR`
//!   stores only the variable's name instead. Keys are never printed.
//! * `source list`: name, kind, account, tables, subscription, where the key is.
//! * `source remove NAME`: removes the table (and the key file `add` wrote).
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use base64::Engine as _;
use clap::{Args, Subcommand};
use toml_edit::{value, Array, ArrayOfTables, DocumentMut, Item, Table};

/// Arguments of `azlog-hub source`.
#[derive(Args, Debug)]
pub struct SourceArgs {
    /// The configuration file (created by `add` when missing).
    #[arg(
        long,
        short,
        value_name = "FILE",
        env = "AZLOG_CONFIG",
        default_value = "azlog-hub.toml",
        global = true
    )]
    pub config: PathBuf,
    #[command(subcommand)]
    pub command: SourceCommand,
}

/// `source` subcommands.
#[derive(Subcommand, Debug)]
pub enum SourceCommand {
    /// Add a source: `add NAME[.SUBSCRIPTIONID] wad ACCOUNT [KEY]` (KEY from stdin when absent or `-`).
    Add(AddArgs),
    /// List the configured sources (never their keys).
    List,
    /// Remove a source by name.
    Remove {
        /// The source name.
        name: String,
    },
}

/// Arguments of `source add`.
#[derive(Args, Debug)]
pub struct AddArgs {
    /// Source name; `NAME.SUBSCRIPTIONID` also sets the records' subscription id.
    pub name: String,
    /// Source kind (only `wad`).
    pub kind: String,
    /// Storage account name.
    pub account: String,
    /// Account key (base64); read from stdin when absent or `-`.
    pub key: Option<String>,
    /// Store the name of an environment variable holding the key instead of the key.
    #[arg(long, value_name = "VAR", conflicts_with = "key")]
    pub key_env: Option<String>,
    /// Table to poll (repeatable; default WADWindowsEventLogsTable).
    #[arg(long = "table", value_name = "TABLE")]
    pub tables: Vec<String>,
    /// Table endpoint (default https://ACCOUNT.table.core.windows.net).
    #[arg(long, value_name = "URL")]
    pub endpoint: Option<String>,
}

/// Runs a `source` subcommand.
pub fn run(args: SourceArgs) -> Result<ExitCode> {
    match args.command {
        SourceCommand::Add(a) => add(&args.config, a, &mut std::io::stdin()),
        SourceCommand::List => {
            print!("{}", list(&args.config)?);
            Ok(ExitCode::SUCCESS)
        }
        SourceCommand::Remove { name } => remove(&args.config, &name),
    }
}

fn read_doc(file: &Path) -> Result<DocumentMut> {
    match std::fs::read_to_string(file) {
        Ok(text) => text
            .parse::<DocumentMut>()
            .map_err(|e| anyhow::anyhow!("{}: {}", file.display(), e.message())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(DocumentMut::new()),
        Err(e) => Err(e).with_context(|| format!("reading {}", file.display())),
    }
}

/// Writes the file atomically (temp file, fsync, rename), keeping its permissions.
fn write_doc(file: &Path, doc: &DocumentMut) -> Result<()> {
    use std::io::Write;
    let dir = file
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let tmp = file.with_extension("toml.tmp");
    {
        let mut f =
            std::fs::File::create(&tmp).with_context(|| format!("writing {}", tmp.display()))?;
        f.write_all(doc.to_string().as_bytes())?;
        f.sync_all()?;
        if let Ok(meta) = std::fs::metadata(file) {
            std::fs::set_permissions(&tmp, meta.permissions())?;
        }
    }
    std::fs::rename(&tmp, file).with_context(|| format!("replacing {}", file.display()))?;
    Ok(())
}

fn config_dir(file: &Path) -> PathBuf {
    file.parent()
        .filter(|d| !d.as_os_str().is_empty())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// `[source.wad] secrets_dir`, else `<state_dir>/secrets` (relative to the config's folder).
fn secrets_dir(file: &Path, doc: &DocumentMut) -> PathBuf {
    let base = config_dir(file);
    if let Some(d) = doc
        .get("source")
        .and_then(|s| s.get("wad"))
        .and_then(|w| w.get("secrets_dir"))
        .and_then(Item::as_str)
    {
        return base.join(d);
    }
    let state = doc
        .get("state_dir")
        .and_then(Item::as_str)
        .unwrap_or("state");
    base.join(state).join("secrets")
}

/// `NAME.SUBSCRIPTIONID` → (NAME, Some(SUBSCRIPTIONID)).
fn split_name(full: &str) -> Result<(String, Option<String>)> {
    let (name, sub) = match full.split_once('.') {
        Some((n, s)) => (n, Some(s)),
        None => (full, None),
    };
    let ok_name = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !ok_name {
        bail!("source name {name:?}: use letters, digits, '-' and '_'");
    }
    if let Some(s) = sub {
        let hex = s.bytes().filter(u8::is_ascii_hexdigit).count();
        let ok = s.len() == 36
            && hex == 32
            && s.bytes().enumerate().all(|(i, b)| {
                if [8, 13, 18, 23].contains(&i) {
                    b == b'-'
                } else {
                    b.is_ascii_hexdigit()
                }
            });
        if !ok {
            bail!("subscription id {s:?} after the '.' is not a GUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)");
        }
    }
    Ok((name.to_owned(), sub.map(str::to_ascii_lowercase)))
}

fn accounts(doc: &DocumentMut) -> Option<&ArrayOfTables> {
    doc.get("source")?
        .get("wad")?
        .get("account")?
        .as_array_of_tables()
}

fn account_name(t: &Table) -> String {
    t.get("name")
        .and_then(Item::as_str)
        .or_else(|| t.get("account").and_then(Item::as_str))
        .unwrap_or("")
        .to_owned()
}

/// `source add`.
pub fn add(file: &Path, a: AddArgs, stdin: &mut dyn Read) -> Result<ExitCode> {
    if !a.kind.eq_ignore_ascii_case("wad") {
        bail!("source kind {:?}: only \"wad\" is supported", a.kind);
    }
    let (name, subscription) = split_name(&a.name)?;
    let account = a.account.trim();
    let ok_account = (3..=24).contains(&account.len())
        && account
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    if !ok_account {
        bail!("storage account {account:?}: 3 to 24 lowercase letters and digits");
    }
    let tables = if a.tables.is_empty() {
        vec![azlog_wad::DEFAULT_TABLE.to_owned()]
    } else {
        a.tables.clone()
    };
    for t in &tables {
        azlog_wad::table::check_table_name(t).map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    let mut doc = read_doc(file)?;
    if accounts(&doc).is_some_and(|list| list.iter().any(|t| account_name(t) == name)) {
        bail!(
            "a source named {name} exists already in {} (remove it first)",
            file.display()
        );
    }
    let mut entry = Table::new();
    entry.insert("name", value(name.as_str()));
    entry.insert("account", value(account));
    let mut key_file_written = None;
    match &a.key_env {
        Some(var) => {
            entry.insert("key_env", value(var.as_str()));
        }
        None => {
            let key = match a.key.as_deref() {
                Some(k) if k != "-" => k.trim().to_owned(),
                _ => {
                    let mut s = String::new();
                    stdin
                        .read_to_string(&mut s)
                        .context("reading the key from stdin")?;
                    s.trim().to_owned()
                }
            };
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(&key)
                .map_err(|_| anyhow::anyhow!("the account key is not valid base64"))?;
            if decoded.is_empty() {
                bail!("the account key is empty");
            }
            let dir = secrets_dir(file, &doc);
            let path = dir.join(format!("wad-{name}.key"));
            write_secret(&dir, &path, &key)?;
            let shown = path
                .strip_prefix(config_dir(file))
                .map(Path::to_path_buf)
                .unwrap_or_else(|_| path.clone());
            entry.insert("key_file", value(shown.to_string_lossy().as_ref()));
            key_file_written = Some(path);
        }
    }
    let mut arr = Array::new();
    for t in &tables {
        arr.push(t.as_str());
    }
    entry.insert("tables", value(arr));
    if let Some(ep) = &a.endpoint {
        entry.insert("endpoint", value(ep.as_str()));
    }
    if let Some(sub) = &subscription {
        entry.insert("subscription_id", value(sub.as_str()));
    }
    let source = doc
        .entry("source")
        .or_insert_with(|| Item::Table(implicit_table()))
        .as_table_mut()
        .context("`source` in the config is not a table")?;
    let wad = source
        .entry("wad")
        .or_insert_with(|| Item::Table(Table::new()))
        .as_table_mut()
        .context("`source.wad` in the config is not a table")?;
    let list = wad
        .entry("account")
        .or_insert_with(|| Item::ArrayOfTables(ArrayOfTables::new()))
        .as_array_of_tables_mut()
        .context("`source.wad.account` in the config is not an array of tables")?;
    list.push(entry);
    write_doc(file, &doc)?;
    println!(
        "added wad source {name}: account {account}, tables {}{}{}",
        tables.join(", "),
        subscription
            .as_deref()
            .map(|s| format!(", subscription {s}"))
            .unwrap_or_default(),
        match (&key_file_written, &a.key_env) {
            (Some(p), _) => format!("; key stored in {}", p.display()),
            (None, Some(v)) => format!("; key read from ${v}"),
            _ => String::new(),
        }
    );
    Ok(ExitCode::SUCCESS)
}

fn implicit_table() -> Table {
    let mut t = Table::new();
    t.set_implicit(true);
    t
}

fn write_secret(dir: &Path, path: &Path, key: &str) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("creating the secrets folder {}", dir.display()))?;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    f.write_all(key.as_bytes())?;
    f.write_all(b"\n")?;
    f.sync_all()?;
    Ok(())
}

/// `source list` as text.
pub fn list(file: &Path) -> Result<String> {
    let doc = read_doc(file)?;
    let mut out = String::new();
    let Some(list) = accounts(&doc) else {
        out.push_str(&format!("no sources in {}\n", file.display()));
        return Ok(out);
    };
    out.push_str("NAME\tKIND\tACCOUNT\tTABLES\tSUBSCRIPTION\tCREDENTIAL\n");
    for t in list.iter() {
        let s = |k: &str| t.get(k).and_then(Item::as_str).unwrap_or("").to_owned();
        let tables = t
            .get("tables")
            .and_then(Item::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str())
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .unwrap_or_else(|| azlog_wad::DEFAULT_TABLE.to_owned());
        let credential = if t.contains_key("key_file") {
            format!("key file {}", s("key_file"))
        } else if t.contains_key("key_env") {
            format!("key in ${}", s("key_env"))
        } else if t.contains_key("key") {
            "key (inline)".to_owned()
        } else if t.contains_key("sas") || t.contains_key("sas_env") || t.contains_key("sas_file") {
            "SAS".to_owned()
        } else if t.contains_key("connection_string")
            || t.contains_key("connection_string_env")
            || t.contains_key("connection_string_file")
        {
            "connection string".to_owned()
        } else {
            "none".to_owned()
        };
        let account = if t.contains_key("account") {
            s("account")
        } else {
            "(connection string)".to_owned()
        };
        out.push_str(&format!(
            "{}\twad\t{}\t{}\t{}\t{}\n",
            account_name(t),
            account,
            tables,
            s("subscription_id"),
            credential
        ));
    }
    Ok(out)
}

/// `source remove`.
pub fn remove(file: &Path, name: &str) -> Result<ExitCode> {
    let mut doc = read_doc(file)?;
    let secrets = secrets_dir(file, &doc);
    let base = config_dir(file);
    let list = doc
        .get_mut("source")
        .and_then(|s| s.get_mut("wad"))
        .and_then(|w| w.get_mut("account"))
        .and_then(Item::as_array_of_tables_mut);
    let Some(list) = list else {
        bail!("no source named {name} in {}", file.display());
    };
    let Some(index) = list.iter().position(|t| account_name(t) == name) else {
        bail!("no source named {name} in {}", file.display());
    };
    let key_file = list
        .get(index)
        .and_then(|t| t.get("key_file"))
        .and_then(Item::as_str)
        .map(|p| base.join(p));
    list.remove(index);
    write_doc(file, &doc)?;
    // Delete the key only when `add` wrote it (inside the secrets folder).
    if let Some(p) = key_file.filter(|p| p.starts_with(&secrets)) {
        if let Err(e) = std::fs::remove_file(&p) {
            tracing::warn!(path = %p.display(), error = %e, "could not delete the key file");
        }
    }
    println!("removed source {name}");
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_subscriptions() {
        assert_eq!(split_name("prod").unwrap(), ("prod".into(), None));
        assert_eq!(
            split_name("prod.0A1B2C3D-0000-1111-2222-333344445555").unwrap(),
            (
                "prod".into(),
                Some("0a1b2c3d-0000-1111-2222-333344445555".into())
            )
        );
        assert!(split_name("prod.notaguid").is_err());
        assert!(split_name("bad name").is_err());
        assert!(split_name(".x").is_err());
    }
}
