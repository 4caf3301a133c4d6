//! What changed in the cache between two looks, and whose change it was: pure functions over
//! documents and this process's own writes.

use std::sync::Arc;

use crate::cache_file::Document;
use crate::own_writes::OwnWrites;

/// Servers another process changed between `baseline` and `now`, given this process's own
/// writes in between. Walk baseline -> before(1) -> after(1) -> before(2) ... -> now: the steps
/// between one of our writes and the next are everybody else's changes; the writes are ours.
pub(super) fn others_changes(baseline: &Arc<Document>, own: OwnWrites, now: &Document) -> Vec<String> {
  let mut servers = Vec::new();
  let mut cursor = Arc::clone(baseline);
  for (i, write) in own.writes.into_iter().enumerate() {
    if !(own.gap && i == 0) {
      servers.extend(changed_servers(&cursor, &write.before));
    }
    cursor = write.after;
  }
  servers.extend(changed_servers(&cursor, now));
  let mut seen = std::collections::HashSet::new();
  servers.retain(|s| seen.insert(s.clone()));
  servers
}

/// Servers whose entries were added, changed or removed between two documents.
fn changed_servers(before: &Document, after: &Document) -> Vec<String> {
  let mut names: Vec<String> =
    after.iter().filter(|(k, v)| before.get(*k) != Some(*v)).map(|(k, _)| k.to_string()).collect();
  names.extend(before.keys().filter(|k| !after.contains_key(*k)).map(ToString::to_string));
  names
}

#[cfg(test)]
mod tests {
  use super::*;
  use crate::own_writes::OwnWrite;

  fn parse(s: &str) -> Document {
    match crate::cache_file::parse(s.as_bytes()) {
      crate::cache_file::Parsed::Document(d) => d,
      crate::cache_file::Parsed::Corrupt(w) => panic!("{w}"),
    }
  }

  #[test]
  fn changed_servers_names_added_changed_removed() {
    let a = parse(r#"{"keep":{"timestamp":1},"change":{"timestamp":1},"gone":{"timestamp":1}}"#);
    let b = parse(r#"{"keep":{"timestamp":1},"change":{"timestamp":2},"new":{"timestamp":1}}"#);
    assert_eq!(changed_servers(&a, &b), vec!["change", "new", "gone"]);
  }

  #[test]
  fn own_writes_are_not_others_changes() {
    let base = Arc::new(parse(r#"{"a":{"timestamp":1}}"#));
    let before = Arc::new(parse(r#"{"a":{"timestamp":1},"other":{"timestamp":1}}"#));
    let after = Arc::new(parse(r#"{"other":{"timestamp":1}}"#));
    let now = parse(r#"{"other":{"timestamp":1}}"#);
    let own = OwnWrites { writes: vec![OwnWrite { before, after }], gap: false };
    assert_eq!(others_changes(&base, own, &now), vec!["other"], "the removal of a is ours");
  }
}
