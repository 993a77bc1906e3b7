const MSGS: [&str; 4] = [
    "TCP request from 10.0.2.4:51990 to 13.69.65.17:443. Action: Allow. Rule Collection: rc-egress. Rule: allow-https",
    "HTTPS request from 10.0.2.5:55640 to www.badsite.example:443. Action: Deny. No rule matched. Proceeding with default action",
    "TCP request from 198.51.100.77:50000 to 20.1.1.1:3389 was DNAT'ed to 10.0.0.4:3389",
    "DNS Request: 10.0.2.4:53425 - 46347 A IN md-abc.blob.core.windows.net. udp 58 false 512 NOERROR qr,rd,ra 130 0.001s",
];
const PATS: [&str; 22] = [r"Action: (\w+)", r"was (DNAT)'ed", r"^(DNS Request)", r"^(\w+) request from", r"^(TCP|UDP|ICMP) request from",
    r"^(HTTPS?) request from", r"request from (\S+):\d+ to ", r"^DNS Request: (\S+):\d+ ", r"request from \S+:(\d+) to ",
    r"^DNS Request: \S+:(\d+) ", r" to (\S+):\d+(?:[.\s]|$)", r" to \S+:(\d+)(?:[.\s]|$)", r"^HTTPS? request from \S+ to ([^\s:]+):\d+",
    r"DNAT'ed to (\S+):\d+", r"DNAT'ed to \S+:(\d+)", r"Rule Collection: ([^.]+)\.", r"Rule: (.+?)\.?\s*$", r"(No rule matched)",
    r"ThreatIntel: (.+?)\.?\s*$", r"^DNS Request: \S+ - \d+ \S+ \S+ (\S+?)\.? ", r"^DNS Request: \S+ - \d+ (\S+) ", r"^DNS Request: (?:\S+ ){10}(\S+)"];
#[inline(never)]
fn uni(res: &[regex::Regex], n: usize) -> usize { let mut k=0; for _ in 0..n { for re in res { for m in &MSGS { k += re.captures(m).and_then(|c| c.get(1).map(|x| x.len())).unwrap_or(0); } } } k }
#[inline(never)]
fn asc(res: &[regex::bytes::Regex], n: usize) -> usize { let mut k=0; for _ in 0..n { for re in res { for m in &MSGS { if m.is_ascii() { k += re.captures(m.as_bytes()).and_then(|c| c.get(1).map(|x| x.len())).unwrap_or(0); } } } } k }
#[inline(never)]
fn asclocs(res: &[regex::bytes::Regex], locs: &mut [regex::bytes::CaptureLocations], n: usize) -> usize { let mut k=0; for _ in 0..n { for (re, l) in res.iter().zip(locs.iter_mut()) { for m in &MSGS { if re.captures_read(l, m.as_bytes()).is_some() { k += l.get(1).map(|(a,b)| b-a).unwrap_or(0); } } } } k }
#[inline(never)]
fn unilocs(res: &[regex::Regex], locs: &mut [regex::CaptureLocations], n: usize) -> usize { let mut k=0; for _ in 0..n { for (re, l) in res.iter().zip(locs.iter_mut()) { for m in &MSGS { if re.captures_read(l, m).is_some() { k += l.get(1).map(|(a,b)| b-a).unwrap_or(0); } } } } k }
fn main() {
    let only: Option<usize> = std::env::var("P").ok().and_then(|v| v.parse().ok());
    let pats: Vec<&str> = PATS.iter().enumerate().filter(|(i,_)| only.is_none_or(|o| o == *i)).map(|(_,p)| *p).collect();
    let res: Vec<regex::Regex> = pats.iter().map(|p| regex::Regex::new(p).unwrap()).collect();
    let ares: Vec<regex::bytes::Regex> = pats.iter().map(|p| regex::bytes::RegexBuilder::new(p).unicode(false).build().unwrap()).collect();
    let mut alocs: Vec<_> = ares.iter().map(|r| r.capture_locations()).collect();
    let mut ulocs: Vec<_> = res.iter().map(|r| r.capture_locations()).collect();
    uni(&res, 3); asc(&ares, 3); asclocs(&ares, &mut alocs, 3); unilocs(&res, &mut ulocs, 3);
    let n = 100;
    println!("{} {} {} {}", uni(&res, n), asc(&ares, n), asclocs(&ares, &mut alocs, n), unilocs(&res, &mut ulocs, n));
}
