//! `hec-receiver --addr 127.0.0.1:8088 --token <t> [--ack-token <t>] [--disabled-token <t>]`:
//! runs the test HEC receiver until killed, printing `listening on <url>` once bound.
use azlog_hec_receiver::{HecReceiver, TokenConfig};

fn main() -> anyhow::Result<()> {
    let mut addr = "127.0.0.1:8088".to_string();
    let mut tokens = Vec::new();
    let args: Vec<String> = std::env::args().skip(1).collect();
    for pair in args.chunks(2) {
        let a = &pair[0];
        let val = || {
            pair.get(1)
                .cloned()
                .ok_or_else(|| anyhow::anyhow!("{a} needs a value"))
        };
        match a.as_str() {
            "--addr" => addr = val()?,
            "--token" => tokens.push(TokenConfig::new(&val()?)),
            "--ack-token" => tokens.push(TokenConfig::new(&val()?).with_ack()),
            "--disabled-token" => {
                let mut t = TokenConfig::new(&val()?);
                t.enabled = false;
                tokens.push(t);
            }
            other => anyhow::bail!("unknown argument {other}"),
        }
    }
    let rx = HecReceiver::start_on(&addr, tokens)?;
    println!("listening on {}", rx.url());
    loop {
        std::thread::park();
    }
}
