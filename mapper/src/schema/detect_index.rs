//! A detection pre-filter: most families are detected by an `equals` test (`category`,
//! `Type`, ...). Indexing those values lets the mapper test only the families a record can
//! match instead of walking every family in priority order.
use std::collections::HashMap;

use super::plan::{FamilyPlan, Test};

/// Lower-cased `equals` value → indices of the families requiring it.
pub type ValueIndex = HashMap<Box<str>, Vec<usize>, super::fxhash::FxBuildHasher>;

/// For each indexed condition path, the families one of whose blocks requires that path to
/// equal a given (lower-cased) value.
#[derive(Debug, Default, Clone)]
pub struct DetectIndex {
    /// (index into [`super::Plan::cond_paths`], lower-cased value → family indices).
    pub keys: Vec<(usize, ValueIndex)>,
    /// Families with a block that has no `equals` test: always candidates.
    pub always: Vec<usize>,
}

impl DetectIndex {
    /// Indexes each block by its first `equals` condition. A family is pruned for a record
    /// only when every block's indexed condition fails, so the first matching family in
    /// detection order stays the same.
    pub fn build(families: &[FamilyPlan]) -> DetectIndex {
        let mut index = DetectIndex::default();
        for (fi, fam) in families.iter().enumerate() {
            let mut blocks = Vec::new();
            for block in &fam.detect {
                let key = block.iter().find_map(|c| match &c.test {
                    Test::Equals(vals) => Some((c.path, vals)),
                    _ => None,
                });
                match key {
                    Some(k) => blocks.push(k),
                    None => {
                        blocks.clear();
                        index.always.push(fi);
                        break;
                    }
                }
            }
            for (path, vals) in blocks {
                let slot = match index.keys.iter().position(|(p, _)| *p == path) {
                    Some(s) => s,
                    None => {
                        index.keys.push((path, HashMap::default()));
                        index.keys.len() - 1
                    }
                };
                for v in vals {
                    let list = index.keys[slot].1.entry(v.clone()).or_default();
                    if list.last() != Some(&fi) {
                        list.push(fi);
                    }
                }
            }
        }
        index
    }
}
