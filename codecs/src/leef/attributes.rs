//! The predefined LEEF 2.0 event attributes (IBM "Predefined LEEF event attributes"),
//! generated from `shared/reference/leef_attributes.yaml` (tenzir/skills copy of the IBM docs).

/// The value type of a LEEF attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttrType {
    /// Free text.
    Str,
    /// A date (`devTime`): epoch ms here.
    Date,
    /// Integer (ports, byte counts, `sev`).
    Int,
    /// Integer or IANA keyword (`proto`).
    IntOrKeyword,
    /// IPv4 or IPv6 address.
    Ip,
    /// MAC address.
    Mac,
    /// `true` or `false`.
    Bool,
}

/// One predefined attribute.
#[derive(Debug, Clone, Copy)]
pub struct AttrDef {
    /// The attribute key.
    pub key: &'static str,
    /// Value type.
    pub ty: AttrType,
    /// Documented maximum length in characters, for string attributes.
    pub max_len: Option<u32>,
    /// Inclusive numeric range, for integer attributes with a documented range.
    pub range: Option<(i64, i64)>,
    /// Reserved by the spec but not implemented in QRadar.
    pub reserved: bool,
}

/// Every predefined attribute, sorted by `key`.
pub const ATTRIBUTES: &[AttrDef] = &[
    AttrDef {
        key: "accountName",
        ty: AttrType::Str,
        max_len: Some(255),
        range: None,
        reserved: false,
    },
    AttrDef {
        key: "calCountryOrRegion",
        ty: AttrType::Str,
        max_len: Some(2),
        range: None,
        reserved: true,
    },
    AttrDef {
        key: "calLanguage",
        ty: AttrType::Str,
        max_len: Some(2),
        range: None,
        reserved: true,
    },
    AttrDef {
        key: "cat",
        ty: AttrType::Str,
        max_len: None,
        range: None,
        reserved: false,
    },
    AttrDef {
        key: "devTime",
        ty: AttrType::Date,
        max_len: None,
        range: None,
        reserved: false,
    },
    AttrDef {
        key: "devTimeFormat",
        ty: AttrType::Str,
        max_len: None,
        range: None,
        reserved: false,
    },
    AttrDef {
        key: "domain",
        ty: AttrType::Str,
        max_len: None,
        range: None,
        reserved: false,
    },
    AttrDef {
        key: "dst",
        ty: AttrType::Ip,
        max_len: None,
        range: None,
        reserved: false,
    },
    AttrDef {
        key: "dstBytes",
        ty: AttrType::Int,
        max_len: None,
        range: None,
        reserved: false,
    },
    AttrDef {
        key: "dstMAC",
        ty: AttrType::Mac,
        max_len: None,
        range: None,
        reserved: false,
    },
    AttrDef {
        key: "dstPackets",
        ty: AttrType::Int,
        max_len: None,
        range: None,
        reserved: false,
    },
    AttrDef {
        key: "dstPort",
        ty: AttrType::Int,
        max_len: None,
        range: Some((0, 65535)),
        reserved: false,
    },
    AttrDef {
        key: "dstPostNAT",
        ty: AttrType::Ip,
        max_len: None,
        range: None,
        reserved: false,
    },
    AttrDef {
        key: "dstPostNATPort",
        ty: AttrType::Int,
        max_len: None,
        range: Some((0, 65535)),
        reserved: false,
    },
    AttrDef {
        key: "dstPreNAT",
        ty: AttrType::Ip,
        max_len: None,
        range: None,
        reserved: false,
    },
    AttrDef {
        key: "dstPreNATPort",
        ty: AttrType::Int,
        max_len: None,
        range: Some((0, 65535)),
        reserved: false,
    },
    AttrDef {
        key: "groupID",
        ty: AttrType::Str,
        max_len: None,
        range: None,
        reserved: false,
    },
    AttrDef {
        key: "identGrpName",
        ty: AttrType::Str,
        max_len: Some(255),
        range: None,
        reserved: false,
    },
    AttrDef {
        key: "identHostName",
        ty: AttrType::Str,
        max_len: Some(255),
        range: None,
        reserved: false,
    },
    AttrDef {
        key: "identMAC",
        ty: AttrType::Mac,
        max_len: None,
        range: None,
        reserved: true,
    },
    AttrDef {
        key: "identNetBios",
        ty: AttrType::Str,
        max_len: Some(255),
        range: None,
        reserved: false,
    },
    AttrDef {
        key: "identSecondlp",
        ty: AttrType::Ip,
        max_len: None,
        range: None,
        reserved: true,
    },
    AttrDef {
        key: "identSrc",
        ty: AttrType::Ip,
        max_len: None,
        range: None,
        reserved: false,
    },
    AttrDef {
        key: "isLoginEvent",
        ty: AttrType::Bool,
        max_len: None,
        range: None,
        reserved: true,
    },
    AttrDef {
        key: "isLogoutEvent",
        ty: AttrType::Bool,
        max_len: None,
        range: None,
        reserved: true,
    },
    AttrDef {
        key: "policy",
        ty: AttrType::Str,
        max_len: None,
        range: None,
        reserved: false,
    },
    AttrDef {
        key: "proto",
        ty: AttrType::IntOrKeyword,
        max_len: None,
        range: None,
        reserved: false,
    },
    AttrDef {
        key: "realm",
        ty: AttrType::Str,
        max_len: None,
        range: None,
        reserved: false,
    },
    AttrDef {
        key: "resource",
        ty: AttrType::Str,
        max_len: None,
        range: None,
        reserved: false,
    },
    AttrDef {
        key: "role",
        ty: AttrType::Str,
        max_len: None,
        range: None,
        reserved: false,
    },
    AttrDef {
        key: "sev",
        ty: AttrType::Int,
        max_len: None,
        range: Some((1, 10)),
        reserved: false,
    },
    AttrDef {
        key: "src",
        ty: AttrType::Ip,
        max_len: None,
        range: None,
        reserved: false,
    },
    AttrDef {
        key: "srcBytes",
        ty: AttrType::Int,
        max_len: None,
        range: None,
        reserved: false,
    },
    AttrDef {
        key: "srcMAC",
        ty: AttrType::Mac,
        max_len: None,
        range: None,
        reserved: false,
    },
    AttrDef {
        key: "srcPackets",
        ty: AttrType::Int,
        max_len: None,
        range: None,
        reserved: false,
    },
    AttrDef {
        key: "srcPort",
        ty: AttrType::Int,
        max_len: None,
        range: Some((0, 65535)),
        reserved: false,
    },
    AttrDef {
        key: "srcPostNAT",
        ty: AttrType::Ip,
        max_len: None,
        range: None,
        reserved: false,
    },
    AttrDef {
        key: "srcPostNATPort",
        ty: AttrType::Int,
        max_len: None,
        range: Some((0, 65535)),
        reserved: false,
    },
    AttrDef {
        key: "srcPreNAT",
        ty: AttrType::Ip,
        max_len: None,
        range: None,
        reserved: false,
    },
    AttrDef {
        key: "srcPreNATPort",
        ty: AttrType::Int,
        max_len: None,
        range: Some((0, 65535)),
        reserved: false,
    },
    AttrDef {
        key: "totalPackets",
        ty: AttrType::Int,
        max_len: None,
        range: None,
        reserved: false,
    },
    AttrDef {
        key: "url",
        ty: AttrType::Str,
        max_len: None,
        range: None,
        reserved: false,
    },
    AttrDef {
        key: "usrName",
        ty: AttrType::Str,
        max_len: Some(255),
        range: None,
        reserved: false,
    },
    AttrDef {
        key: "vSrc",
        ty: AttrType::Ip,
        max_len: None,
        range: None,
        reserved: false,
    },
    AttrDef {
        key: "vSrcName",
        ty: AttrType::Str,
        max_len: Some(255),
        range: None,
        reserved: false,
    },
];

/// Looks a predefined attribute up by key (case-sensitive).
pub fn lookup(key: &str) -> Option<&'static AttrDef> {
    ATTRIBUTES
        .binary_search_by(|d| d.key.cmp(key))
        .ok()
        .map(|i| &ATTRIBUTES[i])
}
