//! Records/s per core for CEF and LEEF encoding of a realistic mix (~20 hand-built records:
//! sign-ins, activity, Key Vault, firewall, Windows 4624/4625, audit, alert, AKS).
//! Run: `cargo bench -p azlog-codecs --bench cef_leef`.
#[allow(dead_code)]
#[path = "../tests/support/records.rs"]
mod records;

use azlog_codecs::{cef, leef};
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};

fn bench(c: &mut Criterion) {
    let recs = records::realistic();
    let cef_cfg = cef::CefConfig::builtin().expect("cef map");
    let leef_cfg = leef::LeefConfig::builtin().expect("leef map");
    let mut g = c.benchmark_group("encode_mix");
    g.throughput(Throughput::Elements(recs.len() as u64));
    let mut out = String::with_capacity(8192);
    g.bench_function("cef", |b| {
        b.iter(|| {
            for r in &recs {
                out.clear();
                black_box(cef::encode(black_box(r), &cef_cfg, &mut out));
            }
        })
    });
    g.bench_function("leef", |b| {
        b.iter(|| {
            for r in &recs {
                out.clear();
                black_box(leef::encode(black_box(r), &leef_cfg, &mut out));
            }
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
