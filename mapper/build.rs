//! Embeds every `schemas/*.toml` (not `schemas/sinks/`) into the binary.
use std::fmt::Write as _;
use std::path::PathBuf;
use std::{env, fs};

fn main() {
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".into()));
    let schemas = manifest.join("..").join("schemas");
    println!("cargo::rerun-if-changed={}", schemas.display());
    println!("cargo::rerun-if-changed=build.rs");

    let mut files: Vec<PathBuf> = match fs::read_dir(&schemas) {
        Ok(rd) => rd
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "toml"))
            .collect(),
        Err(_) => Vec::new(),
    };
    files.sort();
    let mut out = String::from("/// Built-in schema tables: (file name, contents).\npub static BUILTIN_TABLES: &[(&str, &str)] = &[\n");
    for f in &files {
        println!("cargo::rerun-if-changed={}", f.display());
        let name = f
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let abs = fs::canonicalize(f).unwrap_or_else(|_| f.clone());
        let _ = writeln!(
            out,
            "    ({name:?}, include_str!({:?})),",
            abs.display().to_string()
        );
    }
    out.push_str("];\n");
    let out_dir = PathBuf::from(env::var("OUT_DIR").unwrap_or_else(|_| ".".into()));
    if let Err(e) = fs::write(out_dir.join("builtin_tables.rs"), out) {
        panic!("cannot write builtin_tables.rs: {e}");
    }
}
