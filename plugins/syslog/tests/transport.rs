//! Transport behaviour against in-process loopback listeners (no daemon needed): exact
//! octet-counting and LF framing, UDP datagrams, acks that count only what the socket accepted
//! (write timeout against a receiver that stops reading), reconnect after the peer closes, and
//! backoff while the receiver is down.
use std::io::{BufRead, BufReader, Read};
use std::net::{TcpListener, UdpSocket};
use std::thread;
use std::time::{Duration, Instant};

use azlog_syslog::{Framing, HeaderFormat, OversizePolicy, Protocol, SyslogConfig, SyslogSender};

fn cfg(protocol: Protocol, port: u16) -> SyslogConfig {
    SyslogConfig {
        host: "127.0.0.1".into(),
        port: Some(port),
        protocol,
        header: HeaderFormat::None,
        reconnect_initial_ms: 50,
        reconnect_max_ms: 400,
        ..Default::default()
    }
}

/// Reads octet-counted frames until EOF.
fn read_octet_frames(stream: impl Read) -> Vec<String> {
    let mut r = BufReader::new(stream);
    let mut frames = Vec::new();
    loop {
        let mut len = Vec::new();
        match r.read_until(b' ', &mut len) {
            Ok(0) | Err(_) => return frames,
            Ok(_) => {}
        }
        let n: usize = std::str::from_utf8(&len[..len.len() - 1])
            .expect("len")
            .parse()
            .expect("digits");
        let mut msg = vec![0u8; n];
        if r.read_exact(&mut msg).is_err() {
            return frames;
        }
        frames.push(String::from_utf8(msg).expect("utf8"));
    }
}

#[test]
fn octet_counting_frames_are_exact() {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    let server = thread::spawn(move || read_octet_frames(l.accept().expect("accept").0));
    let mut s = SyslogSender::new(&cfg(Protocol::Tcp, port), "CEF").expect("sender");
    let msgs = [
        "CEF:0|a|b|1|x|y|5|msg=one",
        "two with 日本語 and \n raw LF",
        "three",
    ];
    s.clear();
    for (i, m) in msgs.iter().enumerate() {
        s.push(i, 6, 0, m);
    }
    let out = s.send(msgs.len());
    assert_eq!(out.handled, 3);
    assert!(out.error.is_none() && out.rejected.is_empty());
    s.close();
    assert_eq!(server.join().expect("server"), msgs);
}

#[test]
fn newline_framing_refuses_records_with_line_feeds() {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    let server = thread::spawn(move || {
        let (c, _) = l.accept().expect("accept");
        BufReader::new(c)
            .lines()
            .map(|l| l.expect("line"))
            .collect::<Vec<_>>()
    });
    let mut s = SyslogSender::new(
        &SyslogConfig {
            framing: Framing::Newline,
            ..cfg(Protocol::Tcp, port)
        },
        "LEEF",
    )
    .expect("sender");
    s.clear();
    s.push(0, 6, 0, "first");
    s.push(1, 6, 0, "bad\nline");
    s.push(2, 6, 0, "third");
    let out = s.send(3);
    assert_eq!(out.handled, 3);
    assert_eq!(out.rejected.len(), 1);
    assert_eq!(out.rejected[0].0, 1);
    assert!(out.rejected[0].1.contains("line feed"));
    s.close();
    assert_eq!(server.join().expect("server"), ["first", "third"]);
}

#[test]
fn udp_one_datagram_per_message_and_size_policy() {
    let rx = UdpSocket::bind("127.0.0.1:0").expect("bind");
    rx.set_read_timeout(Some(Duration::from_secs(2)))
        .expect("timeout");
    let port = rx.local_addr().expect("addr").port();
    let big = "x".repeat(700);
    for (policy, expect_rejected) in [
        (OversizePolicy::Truncate, 0usize),
        (OversizePolicy::Reject, 1),
    ] {
        let mut s = SyslogSender::new(
            &SyslogConfig {
                max_message_size: Some(600),
                oversize: policy,
                ..cfg(Protocol::Udp, port)
            },
            "CEF",
        )
        .expect("sender");
        s.clear();
        s.push(0, 6, 0, "small");
        s.push(1, 6, 0, &big);
        s.push(2, 6, 0, "tail");
        let out = s.send(3);
        assert_eq!(out.handled, 3);
        assert_eq!(out.rejected.len(), expect_rejected);
        assert_eq!(out.truncated, 1 - expect_rejected);
        let mut got = Vec::new();
        for _ in 0..(3 - expect_rejected) {
            let mut buf = [0u8; 2048];
            let n = rx.recv(&mut buf).expect("datagram");
            got.push(String::from_utf8(buf[..n].to_vec()).expect("utf8"));
        }
        match policy {
            OversizePolicy::Truncate => {
                assert_eq!(got, ["small".to_string(), "x".repeat(600), "tail".into()])
            }
            OversizePolicy::Reject => assert_eq!(got, ["small", "tail"]),
        }
    }
}

#[test]
fn acks_count_only_what_the_socket_accepted() {
    // A receiver that accepts but never reads: socket buffers fill, the write times out.
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    let (tx, rx) = std::sync::mpsc::channel();
    let server = thread::spawn(move || {
        let (c, _) = l.accept().expect("accept");
        rx.recv().expect("go");
        read_octet_frames(c)
    });
    let mut s = SyslogSender::new(
        &SyslogConfig {
            write_timeout_ms: 300,
            ..cfg(Protocol::Tcp, port)
        },
        "CEF",
    )
    .expect("sender");
    let n = 4000;
    let payload = "p".repeat(10_000);
    s.clear();
    for i in 0..n {
        s.push(i, 6, 0, &format!("{i:05} {payload}"));
    }
    let started = Instant::now();
    let out = s.send(n);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "write timeout not applied"
    );
    let err = out
        .error
        .expect("a 40 MB batch cannot fit into the socket buffers");
    assert!(err.is_retryable(), "{err}");
    assert!(
        out.handled > 0 && out.handled < n,
        "handled {}",
        out.handled
    );
    let accepted = out.handled;
    // Let the receiver drain; everything reported as accepted must have arrived, in order.
    tx.send(()).expect("go");
    s.close();
    let frames = server.join().expect("server");
    assert!(
        frames.len() >= accepted,
        "{} frames arrived, {accepted} acked",
        frames.len()
    );
    for (i, f) in frames.iter().take(accepted).enumerate() {
        assert!(f.starts_with(&format!("{i:05} ")), "frame {i} out of order");
    }
}

#[test]
fn reconnects_after_the_peer_closed_and_backs_off_while_down() {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    let mut s = SyslogSender::new(&cfg(Protocol::Tcp, port), "CEF").expect("sender");

    // Connection 1: the receiver reads one batch and hangs up.
    let h = thread::spawn(move || {
        let (c, _) = l.accept().expect("accept 1");
        let first = read_octet_frames(c);
        (l, first)
    });
    s.clear();
    s.push(0, 6, 0, "batch1");
    assert_eq!(s.send(1).handled, 1);
    s.close(); // make the receiver see EOF for batch 1 deterministically
    let (l, first) = h.join().expect("server 1");
    assert_eq!(first, ["batch1"]);

    // Connection 2: a fresh connection is opened on the next batch.
    let h = thread::spawn(move || {
        let (c, _) = l.accept().expect("accept 2");
        c.set_read_timeout(Some(Duration::from_secs(2)))
            .expect("timeout");
        let mut r = BufReader::new(c);
        let mut buf = vec![0u8; 8];
        r.read_exact(&mut buf).expect("frame");
        drop(r); // receiver goes away while the client still holds the connection
        (l, String::from_utf8(buf).expect("utf8"))
    });
    s.clear();
    s.push(0, 6, 0, "batch2");
    assert_eq!(s.send(1).handled, 1);
    let (l, got) = h.join().expect("server 2");
    assert_eq!(got, "6 batch2");
    thread::sleep(Duration::from_millis(100));

    // The client notices the dead connection before writing and reconnects.
    let h = thread::spawn(move || {
        let (c, _) = l.accept().expect("accept 3");
        let frames = read_octet_frames(c);
        (l, frames)
    });
    s.clear();
    s.push(0, 6, 0, "batch3");
    let out = s.send(1);
    assert_eq!(out.handled, 1, "{:?}", out.error);
    assert_eq!(s.connects_total, 3);
    s.close();
    let (l, frames) = h.join().expect("server 3");
    assert_eq!(frames, ["batch3"]);

    // Receiver down: connect fails (retryable), then the sender backs off instead of hammering.
    drop(l);
    s.clear();
    s.push(0, 6, 0, "lost?");
    let out = s.send(1);
    assert_eq!(out.handled, 0);
    assert!(out.error.as_ref().is_some_and(|e| e.is_retryable()));
    let out = s.send(1);
    let msg = out.error.expect("still down").to_string();
    assert!(
        msg.contains("waiting") && msg.contains("before reconnecting"),
        "{msg}"
    );
}
