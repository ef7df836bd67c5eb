//! The rowids of a table in order, answering "which rowid is at position `n`" without
//! walking the `n` rows before it, so that a `load_objects` page at a large `offset`
//! costs the rows it prints, not the rows it skips.
//!
//! The rowids are kept sorted in chunks of at most [`CHUNK`] each: finding a position
//! sums chunk lengths (a few hundred for 100,000 rows), inserting or removing one rowid
//! moves at most a chunk's worth of them. Appending at the end, the common case (new rows
//! take the next rowid), pushes onto the last chunk and starts a new one when it is full.

/// The largest a chunk grows before it is split in two.
const CHUNK: usize = 512;

/// A sorted set of rowids with lookup by position.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Positions {
    /// Sorted, non-empty chunks, each holding rowids above the previous chunk's.
    chunks: Vec<Vec<i64>>,
    len: usize,
}

impl Positions {
    /// The positions of rowids already sorted and distinct.
    pub(super) fn from_sorted(rowids: impl IntoIterator<Item = i64>) -> Self {
        let mut positions = Positions::default();
        let mut chunk = Vec::with_capacity(CHUNK / 2);
        for rowid in rowids {
            debug_assert!(chunk.last().is_none_or(|&last| last < rowid));
            chunk.push(rowid);
            positions.len += 1;
            if chunk.len() == CHUNK / 2 {
                positions
                    .chunks
                    .push(std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK / 2)));
            }
        }
        if !chunk.is_empty() {
            positions.chunks.push(chunk);
        }
        positions
    }

    /// How many rowids there are.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.len
    }

    /// Whether there are none.
    #[cfg(test)]
    fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The chunk `rowid` belongs in: the first whose last rowid is at least `rowid`, or
    /// the last chunk when `rowid` is above them all (`None`: no chunk yet).
    fn chunk_for(&self, rowid: i64) -> Option<usize> {
        if self.chunks.is_empty() {
            return None;
        }
        let i = self
            .chunks
            .partition_point(|c| c.last().is_some_and(|&last| last < rowid));
        Some(i.min(self.chunks.len() - 1))
    }

    /// Adds `rowid`; false when it was there already.
    pub(super) fn insert(&mut self, rowid: i64) -> bool {
        // Above every rowid (a new row under the next rowid): onto the last chunk, or a
        // new one once it is full, so that appended rows fill their chunks.
        if let Some(last) = self.chunks.last_mut()
            && last.last().is_some_and(|&above| above < rowid)
        {
            if last.len() < CHUNK {
                last.push(rowid);
            } else {
                let mut chunk = Vec::with_capacity(CHUNK);
                chunk.push(rowid);
                self.chunks.push(chunk);
            }
            self.len += 1;
            return true;
        }
        let Some(i) = self.chunk_for(rowid) else {
            self.chunks.push(vec![rowid]);
            self.len = 1;
            return true;
        };
        let chunk = &mut self.chunks[i];
        let at = match chunk.binary_search(&rowid) {
            Ok(_) => return false,
            Err(at) => at,
        };
        chunk.insert(at, rowid);
        self.len += 1;
        if chunk.len() > CHUNK {
            let upper = chunk.split_off(chunk.len() / 2);
            self.chunks.insert(i + 1, upper);
        }
        true
    }

    /// Removes `rowid`; false when it was not there.
    pub(super) fn remove(&mut self, rowid: i64) -> bool {
        let Some(i) = self.chunk_for(rowid) else {
            return false;
        };
        let chunk = &mut self.chunks[i];
        let Ok(at) = chunk.binary_search(&rowid) else {
            return false;
        };
        chunk.remove(at);
        let left = chunk.len();
        self.len -= 1;
        if left == 0 {
            self.chunks.remove(i);
        } else if self
            .chunks
            .get(i + 1)
            .is_some_and(|next| left + next.len() <= CHUNK / 2)
        {
            // Keep chunks from thinning out as rows go, so a lookup stays short.
            let next = self.chunks.remove(i + 1);
            self.chunks[i].extend(next);
        }
        true
    }

    /// The rowid at position `n` (0 = the smallest), if there are more than `n`.
    pub(super) fn nth(&self, mut n: usize) -> Option<i64> {
        if n >= self.len {
            return None;
        }
        for chunk in &self.chunks {
            if n < chunk.len() {
                return Some(chunk[n]);
            }
            n -= chunk.len();
        }
        None
    }

    /// Every rowid in order.
    #[cfg(test)]
    fn iter(&self) -> impl Iterator<Item = i64> + '_ {
        self.chunks.iter().flatten().copied()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// A small deterministic generator (xorshift), so the test needs no dependency.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    fn check(positions: &Positions, model: &BTreeSet<i64>) {
        assert_eq!(positions.len(), model.len());
        assert!(positions.iter().eq(model.iter().copied()));
        for (n, rowid) in model.iter().enumerate().step_by(37) {
            assert_eq!(positions.nth(n), Some(*rowid), "position {n}");
        }
        assert_eq!(positions.nth(model.len()), None);
        assert!(
            positions
                .chunks
                .iter()
                .all(|c| !c.is_empty() && c.len() <= CHUNK)
        );
    }

    #[test]
    fn positions_follow_inserts_and_removals_like_a_sorted_set() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut positions = Positions::default();
        let mut model = BTreeSet::new();
        for round in 0..20_000 {
            // Mostly appends, some inserts anywhere, removals of a third of the attempts.
            let rowid = match rng.next() % 3 {
                0 => model.last().map_or(1, |last| last + 1),
                _ => (rng.next() % 5_000) as i64 - 100,
            };
            if rng.next() % 3 == 0 {
                assert_eq!(positions.remove(rowid), model.remove(&rowid));
            } else {
                assert_eq!(positions.insert(rowid), model.insert(rowid));
            }
            if round % 1_000 == 0 {
                check(&positions, &model);
            }
        }
        check(&positions, &model);
        // Empty it entirely, then use it again.
        for rowid in model.clone() {
            assert!(positions.remove(rowid));
            model.remove(&rowid);
        }
        check(&positions, &model);
        assert!(positions.is_empty());
        assert!(positions.insert(7));
        assert_eq!(positions.nth(0), Some(7));
    }

    #[test]
    fn appended_rowids_fill_their_chunks() {
        let mut positions = Positions::default();
        let mut model = BTreeSet::new();
        for rowid in 1..=(3 * CHUNK as i64 + 5) {
            assert!(positions.insert(rowid));
            model.insert(rowid);
        }
        check(&positions, &model);
        let sizes: Vec<usize> = positions.chunks.iter().map(Vec::len).collect();
        assert_eq!(sizes, vec![CHUNK, CHUNK, CHUNK, 5]);
        // A rowid already there, the last one included, is not added again.
        assert!(!positions.insert(3 * CHUNK as i64 + 5));
        assert!(!positions.insert(1));
        // Into a full chunk: it splits.
        assert!(positions.remove(2));
        assert!(positions.insert(2));
        assert!(positions.insert(0));
        model.insert(0);
        assert!(positions.insert(-5));
        model.insert(-5);
        check(&positions, &model);
    }

    #[test]
    fn built_from_sorted_rowids_it_finds_each_position() {
        let model: BTreeSet<i64> = (0..10_000).map(|i| i * 3 - 500).collect();
        let positions = Positions::from_sorted(model.iter().copied());
        check(&positions, &model);
        assert_eq!(Positions::from_sorted([]).nth(0), None);
    }
}
