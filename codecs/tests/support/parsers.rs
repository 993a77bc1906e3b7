//! Strict, spec-derived parsers used to check what the codecs write.
//!
//! CEF (Implementation Standard v27): `CEF:0|` + 7 header fields; header escapes only `\\` and
//! `\|`; extension keys `[A-Za-z0-9_.]+`, pairs separated by a space, value escapes only `\\`,
//! `\=`, `\n`, `\r`; an unescaped `=` inside a value, an unknown escape, a dangling `\`, a raw CR
//! or LF anywhere, an empty value or a duplicate key is an error (as strict as liblognorm).
//!
//! LEEF (IBM "LEEF event components"): `LEEF:1.0|V|P|Ver|EventID|` + tab-separated attributes, or
//! `LEEF:2.0|V|P|Ver|EventID|Delim|` + attributes separated by Delim (one character or
//! `x`/`0x` + 1–4 hex digits). Attributes `key=value` (value up to the next delimiter, may
//! contain `=`); keys single words; no CR/LF; EventID ≤ 255 characters; devTime 10/13-digit
//! epoch unless devTimeFormat is present; sev 1–10; ports 0–65535; src/dst/identSrc IPs.
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq)]
pub struct Cef {
    pub version: String,
    pub vendor: String,
    pub product: String,
    pub device_version: String,
    pub signature: String,
    pub name: String,
    pub severity: String,
    pub ext: BTreeMap<String, String>,
}

pub fn parse_cef(line: &str) -> Result<Cef, String> {
    if line.contains('\n') || line.contains('\r') {
        return Err("raw CR/LF in a CEF line".into());
    }
    let rest = line.strip_prefix("CEF:").ok_or("no CEF: prefix")?;
    let mut fields = Vec::new();
    let mut cur = String::new();
    let mut chars = rest.char_indices();
    let mut ext_start = None;
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some((_, '\\')) => cur.push('\\'),
                Some((_, '|')) => cur.push('|'),
                other => return Err(format!("bad header escape {other:?} in {line:?}")),
            },
            '|' => {
                fields.push(std::mem::take(&mut cur));
                if fields.len() == 7 {
                    ext_start = Some(i + 1);
                    break;
                }
            }
            c => cur.push(c),
        }
    }
    let ext_start = ext_start.ok_or_else(|| format!("fewer than 7 header fields: {line:?}"))?;
    if fields[0] != "0" {
        return Err(format!("version {:?}", fields[0]));
    }
    let ext = parse_cef_extension(&rest[ext_start..])?;
    let mut f = fields.into_iter();
    let mut next = || f.next().unwrap_or_default();
    Ok(Cef {
        version: next(),
        vendor: next(),
        product: next(),
        device_version: next(),
        signature: next(),
        name: next(),
        severity: next(),
        ext,
    })
}

fn parse_cef_extension(s: &str) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    if s.is_empty() {
        return Ok(out);
    }
    // Positions of unescaped `=`.
    let b = s.as_bytes();
    let mut eqs = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' => {
                match b.get(i + 1) {
                    Some(b'\\' | b'=' | b'n' | b'r') => {}
                    other => {
                        return Err(format!(
                            "bad extension escape {:?} in {s:?}",
                            other.map(|c| *c as char)
                        ))
                    }
                }
                i += 2;
                continue;
            }
            b'=' => eqs.push(i),
            _ => {}
        }
        i += 1;
    }
    if eqs.is_empty() {
        return Err(format!("extension without key=value: {s:?}"));
    }
    let mut key_start = 0;
    for (n, &eq) in eqs.iter().enumerate() {
        let key = &s[key_start..eq];
        if key.is_empty()
            || !key
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'.')
        {
            return Err(format!(
                "bad key {key:?} (an unescaped `=` in a value?) in {s:?}"
            ));
        }
        let value_end = match eqs.get(n + 1) {
            Some(&next_eq) => {
                let sp = s[..next_eq]
                    .rfind(' ')
                    .ok_or_else(|| format!("no space before key in {s:?}"))?;
                if sp < eq {
                    return Err(format!("two `=` in one value in {s:?}"));
                }
                key_start = sp + 1;
                sp
            }
            None => s.len(),
        };
        let raw = &s[eq + 1..value_end];
        if raw.is_empty() {
            return Err(format!("empty value for {key}"));
        }
        let mut v = String::new();
        let mut it = raw.chars();
        while let Some(c) = it.next() {
            if c == '\\' {
                match it.next() {
                    Some('\\') => v.push('\\'),
                    Some('=') => v.push('='),
                    Some('n') => v.push('\n'),
                    Some('r') => v.push('\r'),
                    other => return Err(format!("bad escape {other:?}")),
                }
            } else {
                v.push(c);
            }
        }
        if out.insert(key.to_string(), v).is_some() {
            return Err(format!("duplicate key {key}"));
        }
    }
    Ok(out)
}

#[derive(Debug, Clone, PartialEq)]
pub struct Leef {
    pub version: String,
    pub vendor: String,
    pub product: String,
    pub device_version: String,
    pub event_id: String,
    pub delimiter: char,
    pub attrs: BTreeMap<String, String>,
}

pub fn parse_delimiter_field(d: &str) -> Result<char, String> {
    let lower = d.to_ascii_lowercase();
    if let Some(hex) = lower.strip_prefix("0x").or_else(|| lower.strip_prefix('x')) {
        if (1..=4).contains(&hex.len()) && hex.bytes().all(|c| c.is_ascii_hexdigit()) {
            let code = u32::from_str_radix(hex, 16).map_err(|e| e.to_string())?;
            return char::from_u32(code).ok_or_else(|| "bad code point".to_string());
        }
    }
    let mut cs = d.chars();
    match (cs.next(), cs.next()) {
        (Some(c), None) => Ok(c),
        _ => Err(format!("bad delimiter field {d:?}")),
    }
}

pub fn parse_leef(line: &str) -> Result<Leef, String> {
    if line.contains('\n') || line.contains('\r') {
        return Err("raw CR/LF in a LEEF line".into());
    }
    let rest = line.strip_prefix("LEEF:").ok_or("no LEEF: prefix")?;
    let (version, header_fields) = if rest.starts_with("1.0|") {
        ("1.0", 5)
    } else if rest.starts_with("2.0|") {
        ("2.0", 6)
    } else {
        return Err(format!("unknown LEEF version in {line:?}"));
    };
    let parts: Vec<&str> = rest.splitn(header_fields + 1, '|').collect();
    if parts.len() != header_fields + 1 {
        return Err(format!("short LEEF header: {line:?}"));
    }
    let delimiter = if version == "2.0" {
        parse_delimiter_field(parts[5])?
    } else {
        '\t'
    };
    let event_id = parts[4].to_string();
    if event_id.chars().count() > 255 {
        return Err("EventID longer than 255".into());
    }
    let mut attrs = BTreeMap::new();
    let payload = parts[header_fields];
    if !payload.is_empty() {
        for piece in payload.split(delimiter) {
            let (k, v) = piece
                .split_once('=')
                .ok_or_else(|| format!("attribute without `=`: {piece:?}"))?;
            if k.is_empty() || !k.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_') {
                return Err(format!("bad key {k:?} in {line:?}"));
            }
            if attrs.insert(k.to_string(), v.to_string()).is_some() {
                return Err(format!("duplicate key {k}"));
            }
        }
    }
    if let Some(t) = attrs.get("devTime") {
        let epoch = t.bytes().all(|c| c.is_ascii_digit()) && (t.len() == 10 || t.len() == 13);
        if !epoch && !attrs.contains_key("devTimeFormat") {
            return Err(format!(
                "devTime {t:?} is not epoch and has no devTimeFormat"
            ));
        }
    }
    if let Some(sev) = attrs.get("sev") {
        match sev.parse::<i64>() {
            Ok(1..=10) => {}
            _ => return Err(format!("sev {sev:?} not 1-10")),
        }
    }
    for k in ["srcPort", "dstPort"] {
        if let Some(p) = attrs.get(k) {
            p.parse::<u16>().map_err(|_| format!("{k}={p:?}"))?;
        }
    }
    for k in ["src", "dst", "identSrc"] {
        if let Some(ip) = attrs.get(k) {
            ip.parse::<std::net::IpAddr>()
                .map_err(|_| format!("{k}={ip:?} is not an IP"))?;
        }
    }
    Ok(Leef {
        version: version.to_string(),
        vendor: parts[1].to_string(),
        product: parts[2].to_string(),
        device_version: parts[3].to_string(),
        event_id,
        delimiter,
        attrs,
    })
}
