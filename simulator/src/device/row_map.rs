//! A table's rows by rowid, in rowid order, with lookup by position: the one structure a
//! table keeps its rows in.
//!
//! The rows are kept sorted in chunks of at most [`CHUNK`] each, with the last rowid of
//! every chunk in a separate array, so a lookup is a binary search over those rowids and
//! one within a chunk. Appending at the end, the common case (new rows take the next
//! rowid, the change log only ever grows there), pushes onto the last chunk and starts a
//! new one when it is full, without any search: a B-tree walks down its whole height for
//! it, which at a million rows cost more than building the row. Inserting or removing a
//! row elsewhere moves at most a chunk's worth of entries; finding the row at position
//! `n` (a page at an offset) sums chunk lengths (a few hundred for 100,000 rows) instead
//! of walking the `n` rows before it. A chunk is a ring buffer, so the oldest rows leave
//! its front without the others moving: a log kept as a ring drops one row for each it
//! gains, and when it turns by a whole chunk that chunk is rewritten where it is and
//! becomes the last one.

use std::collections::VecDeque;

use super::stored_row::StoredRow;

/// The largest a chunk grows before it is split in two.
const CHUNK: usize = 256;

/// Rows keyed by rowid, in rowid order.
#[derive(Debug, Clone, Default)]
pub(super) struct RowMap {
    /// Sorted, non-empty chunks, each holding rowids above the previous chunk's.
    chunks: Vec<VecDeque<(i64, StoredRow)>>,
    /// The last rowid of each chunk, in the chunks' order.
    lasts: Vec<i64>,
    len: usize,
}

impl RowMap {
    /// The rows of an iterator already sorted by rowid, without repeats.
    pub(super) fn from_sorted(rows: impl IntoIterator<Item = (i64, StoredRow)>) -> Self {
        let mut map = RowMap::default();
        for (rowid, row) in rows {
            debug_assert!(map.last_rowid().is_none_or(|last| last < rowid));
            map.push_last(rowid, row);
        }
        map
    }

    /// How many rows there are.
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// Whether there are none.
    pub(super) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The largest rowid.
    pub(super) fn last_rowid(&self) -> Option<i64> {
        self.lasts.last().copied()
    }

    /// The chunk `rowid` belongs in: the first whose last rowid is at least `rowid`
    /// (the number of chunks when `rowid` is above them all).
    fn chunk_for(&self, rowid: i64) -> usize {
        let Some(&first_last) = self.lasts.first() else {
            return 0;
        };
        if rowid <= first_last {
            return 0;
        }
        // The chunks after the first are most often full of rowids that follow one
        // another (rows appended in order, a log): the chunk is then the rowid's distance
        // from the first chunk's end in whole chunks, which its neighbours' last rowids
        // confirm; otherwise a search.
        if let Some(distance) = rowid.checked_sub(first_last) {
            let c = usize::try_from((distance - 1) / CHUNK as i64).map_or(usize::MAX, |n| n + 1);
            if self.lasts.get(c).is_some_and(|&last| last >= rowid) && self.lasts[c - 1] < rowid {
                return c;
            }
        }
        self.lasts.partition_point(|&last| last < rowid)
    }

    /// Where the row `rowid` is: its chunk and its place there.
    fn find(&self, rowid: i64) -> Option<(usize, usize)> {
        let c = self.chunk_for(rowid);
        let chunk = self.chunks.get(c)?;
        // Rowids most often follow one another without gaps (ids given in order, logs):
        // the row is then as far from the chunk's first as its rowid is, found without a
        // search.
        let first = chunk.front()?.0;
        if let Some(guess) = rowid
            .checked_sub(first)
            .and_then(|d| usize::try_from(d).ok())
            && chunk.get(guess).is_some_and(|(id, _)| *id == rowid)
        {
            return Some((c, guess));
        }
        let at = chunk.binary_search_by_key(&rowid, |(id, _)| *id).ok()?;
        Some((c, at))
    }

    /// The row at `rowid`.
    pub(super) fn get(&self, rowid: i64) -> Option<&StoredRow> {
        self.find(rowid).map(|(c, at)| &self.chunks[c][at].1)
    }

    /// The row at `rowid`, to change.
    pub(super) fn get_mut(&mut self, rowid: i64) -> Option<&mut StoredRow> {
        self.find(rowid).map(|(c, at)| &mut self.chunks[c][at].1)
    }

    /// Calls `change` with each row of `rowids` there is, in their order, which must be
    /// ascending without repeats. Every rowid of a range is met by walking the rows from
    /// its first to its last; rowids close together by walking the rows from the first of
    /// them in step with them; others are reached by walking forward from the last one
    /// found, searching when it is not the next.
    pub(super) fn for_each_ascending_mut(
        &mut self,
        rowids: &[i64],
        mut change: impl FnMut(i64, &mut StoredRow),
    ) {
        debug_assert!(rowids.is_sorted());
        let (Some(&low), Some(&high)) = (rowids.first(), rowids.last()) else {
            return;
        };
        // At most twice as many rows between them as rowids: walk them all.
        if high.abs_diff(low) < 2 * rowids.len() as u64 {
            let c = self.chunk_for(low);
            let Some(first) = self.chunks.get(c) else {
                return;
            };
            let at = first.partition_point(|(id, _)| *id < low);
            // Every rowid from `low` to `high`: each row there is until `high`.
            let every = high.abs_diff(low) == rowids.len() as u64 - 1;
            let mut wanted = rowids.iter().copied().peekable();
            for (k, chunk) in self.chunks[c..].iter_mut().enumerate() {
                for (rowid, row) in chunk.range_mut(if k == 0 { at } else { 0 }..) {
                    if every {
                        if *rowid > high {
                            return;
                        }
                        change(*rowid, row);
                        continue;
                    }
                    while wanted.next_if(|w| w < rowid).is_some() {}
                    match wanted.peek() {
                        None => return,
                        Some(w) if w == rowid => {
                            change(*rowid, row);
                            wanted.next();
                        }
                        Some(_) => {}
                    }
                }
            }
            return;
        }
        let (mut c, mut at) = (0, 0);
        for &rowid in rowids {
            if self.lasts.get(c).is_some_and(|&last| last < rowid) {
                c = self.lasts[c..].partition_point(|&last| last < rowid) + c;
                at = 0;
            }
            let Some(chunk) = self.chunks.get_mut(c) else {
                return;
            };
            // The next row is most often the one wanted; otherwise a search of the chunk.
            if chunk.get(at).is_none_or(|(id, _)| *id != rowid) {
                at = chunk.partition_point(|(id, _)| *id < rowid);
            }
            if let Some((id, row)) = chunk.get_mut(at)
                && *id == rowid
            {
                change(rowid, row);
                at += 1;
            }
        }
    }

    /// Whether there is a row at `rowid`.
    pub(super) fn contains_key(&self, rowid: i64) -> bool {
        self.find(rowid).is_some()
    }

    /// Appends a row above every other (the caller checked it is).
    #[inline]
    fn push_last(&mut self, rowid: i64, row: StoredRow) {
        match self.chunks.last_mut() {
            Some(chunk) if chunk.len() < CHUNK => {
                chunk.push_back((rowid, row));
                *self.lasts.last_mut().expect("a last rowid per chunk") = rowid;
            }
            _ => {
                // A table's first chunk grows as rows come (most tables of a fleet's
                // terminals hold a handful); any later one is started at its full size.
                let mut chunk = if self.chunks.is_empty() {
                    VecDeque::new()
                } else {
                    VecDeque::with_capacity(CHUNK)
                };
                chunk.push_back((rowid, row));
                self.chunks.push(chunk);
                self.lasts.push(rowid);
            }
        }
        self.len += 1;
    }

    /// Stores `row` at `rowid`, returning the row it replaces.
    #[inline]
    pub(super) fn insert(&mut self, rowid: i64, row: StoredRow) -> Option<StoredRow> {
        if self.last_rowid().is_none_or(|last| last < rowid) {
            self.push_last(rowid, row);
            return None;
        }
        // At or below the last rowid, so some chunk ends at or above it.
        let c = self.chunk_for(rowid);
        let chunk = &mut self.chunks[c];
        match chunk.binary_search_by_key(&rowid, |(id, _)| *id) {
            Ok(at) => Some(std::mem::replace(&mut chunk[at].1, row)),
            Err(at) => {
                chunk.insert(at, (rowid, row));
                self.len += 1;
                if chunk.len() > CHUNK {
                    let upper = chunk.split_off(chunk.len() / 2);
                    let lower_last = chunk.back().map_or(rowid, |(id, _)| *id);
                    self.chunks.insert(c + 1, upper);
                    self.lasts.insert(c, lower_last);
                }
                None
            }
        }
    }

    /// Removes the row at `rowid`, returning it.
    pub(super) fn remove(&mut self, rowid: i64) -> Option<StoredRow> {
        let (c, at) = self.find(rowid)?;
        let chunk = &mut self.chunks[c];
        let (_, row) = chunk.remove(at)?;
        self.len -= 1;
        match chunk.back() {
            None => {
                self.chunks.remove(c);
                self.lasts.remove(c);
            }
            Some((last, _)) => {
                self.lasts[c] = *last;
                let left = chunk.len();
                if self
                    .chunks
                    .get(c + 1)
                    .is_some_and(|next| left + next.len() <= CHUNK / 2)
                {
                    // Keep chunks from thinning out as rows go, so a lookup stays short.
                    let next = self.chunks.remove(c + 1);
                    self.chunks[c].extend(next);
                    self.lasts.remove(c);
                }
            }
        }
        Some(row)
    }

    /// Removes the row of the smallest rowid, returning it: it leaves the first chunk's
    /// front without the rows behind it moving.
    #[inline]
    pub(super) fn pop_first(&mut self) -> Option<(i64, StoredRow)> {
        let chunk = self.chunks.first_mut()?;
        let first = chunk.pop_front()?;
        self.len -= 1;
        if chunk.is_empty() {
            self.chunks.remove(0);
            self.lasts.remove(0);
        }
        Some(first)
    }

    /// Moves the first `n` rows, one after another, to the end, the `i`-th under `rowid +
    /// i` (`rowid` is above every rowid) after `change(i, its old rowid, row)` rewrote
    /// it: a log kept as a ring hands its oldest rows to the entries it appends, in the
    /// same storage. Returns how many moved (`n`, or none when there are no rows).
    ///
    /// When the whole first chunk goes and its rows would not fit in the last chunk, they
    /// are rewritten where they are and the chunk itself becomes the last one: no row
    /// moves, and a ring full of full chunks turns by whole chunks. Otherwise the rows go
    /// from the first chunk's front to the last chunk's back in runs, as many as the last
    /// one has room for, each run rewritten in place and then moved in one go, the
    /// chunks' bounds settled once a run. A chunk emptied on the way becomes the next last
    /// one the same call needs, rather than being freed while a new one is allocated (one
    /// left over at the end is freed).
    pub(super) fn rotate_firsts(
        &mut self,
        rowid: i64,
        n: usize,
        mut change: impl FnMut(usize, i64, &mut StoredRow),
    ) -> usize {
        debug_assert!(self.last_rowid().is_none_or(|last| last < rowid));
        let mut emptied = None;
        let mut done = 0;
        while done < n {
            match self.chunks.as_mut_slice() {
                [] => break,
                [only] => {
                    // One chunk: its rows go round it, each leaving room for itself.
                    for i in done..n {
                        let (oldest, mut row) = only.pop_front().expect("a chunk is not empty");
                        change(i, oldest, &mut row);
                        only.push_back((rowid + i as i64, row));
                    }
                    done = n;
                }
                [first, .., last] => {
                    if first.len() <= n - done && last.len() + first.len() > CHUNK {
                        // The whole first chunk goes and its rows would not fit in the
                        // last one: they are rewritten where they are and the chunk itself
                        // becomes the last one, no row moved. (Rows that fit are moved,
                        // so that no two chunks next to each other could be one.)
                        done = Self::rewrite_run(first, first.len(), rowid, done, &mut change);
                        let chunk = self.chunks.remove(0);
                        self.chunks.push(chunk);
                        self.lasts.remove(0);
                        self.lasts.push(rowid + done as i64 - 1);
                        continue;
                    }
                    if last.len() == CHUNK {
                        let chunk = emptied
                            .take()
                            .unwrap_or_else(|| VecDeque::with_capacity(CHUNK));
                        self.chunks.push(chunk);
                        self.lasts.push(rowid + done as i64);
                        continue;
                    }
                    // Rewritten in place first, then moved in one go: rewriting each row
                    // on its way from one chunk to the other passed it through the stack.
                    let run = (n - done).min(first.len()).min(CHUNK - last.len());
                    done = Self::rewrite_run(first, run, rowid, done, &mut change);
                    last.extend(first.drain(..run));
                    if first.is_empty() {
                        emptied = Some(self.chunks.remove(0));
                        self.lasts.remove(0);
                    }
                }
            }
            *self.lasts.last_mut().expect("a last rowid per chunk") = rowid + done as i64 - 1;
        }
        done
    }

    /// Rewrites the first `run` rows of `chunk` where they are, the `k`-th as the
    /// `done + k`-th row of a rotation to rowids from `rowid` (see
    /// [`RowMap::rotate_firsts`]); returns `done + run`.
    #[inline(always)]
    fn rewrite_run(
        chunk: &mut VecDeque<(i64, StoredRow)>,
        run: usize,
        rowid: i64,
        done: usize,
        change: &mut impl FnMut(usize, i64, &mut StoredRow),
    ) -> usize {
        for (i, (id, row)) in (done..).zip(chunk.range_mut(..run)) {
            change(i, *id, row);
            *id = rowid + i as i64;
        }
        done + run
    }

    /// Every row in rowid order.
    pub(super) fn iter(&self) -> impl Iterator<Item = (i64, &StoredRow)> {
        self.rows_from(0, 0)
    }

    /// Every rowid in order.
    pub(super) fn keys(&self) -> impl Iterator<Item = i64> {
        self.iter().map(|(id, _)| id)
    }

    /// Every row, to change, in rowid order.
    pub(super) fn values_mut(&mut self) -> impl Iterator<Item = &mut StoredRow> {
        self.chunks.iter_mut().flatten().map(|(_, row)| row)
    }

    /// The rows from chunk `c`, place `at` on, in rowid order.
    fn rows_from(&self, c: usize, at: usize) -> Rows<'_> {
        let (current, pending) = match self.chunks.get(c) {
            Some(chunk) => {
                let (front, back) = chunk.as_slices();
                match front.get(at..) {
                    Some(front) => (front, back),
                    None => (&[][..], back.get(at - front.len()..).unwrap_or_default()),
                }
            }
            None => (&[][..], &[][..]),
        };
        Rows {
            current: current.iter(),
            pending,
            chunks: self.chunks.get(c + 1..).unwrap_or_default().iter(),
        }
    }

    /// The rows whose rowid is at least `low`, in rowid order.
    pub(super) fn starting_at_rowid(&self, low: i64) -> impl Iterator<Item = (i64, &StoredRow)> {
        let c = self.chunk_for(low);
        let at = self
            .chunks
            .get(c)
            .map_or(0, |chunk| chunk.partition_point(|(id, _)| *id < low));
        self.rows_from(c, at)
    }

    /// The rowids from `low` to `high` (both included), in order. A chunk that holds
    /// rowids following one another without a gap (rows appended in order and never
    /// deleted) adds those within them as a range, without reading its rows.
    pub(super) fn rowids_between(&self, low: i64, high: i64) -> Vec<i64> {
        let mut rowids = Vec::new();
        for (chunk, &last) in self
            .chunks
            .iter()
            .zip(&self.lasts)
            .skip(self.chunk_for(low))
        {
            let Some(&(first, _)) = chunk.front() else {
                continue;
            };
            if first > high {
                break;
            }
            if last.abs_diff(first) == chunk.len() as u64 - 1 {
                // Without a gap: every rowid from the larger start to the smaller end is
                // there. A half-open range extends in one go (an inclusive one pushes each).
                let (from, to) = (first.max(low), last.min(high));
                match to.checked_add(1) {
                    Some(end) => rowids.extend(from..end),
                    None => rowids.extend(from..=to),
                }
            } else {
                rowids.extend(
                    chunk
                        .iter()
                        .map(|(rowid, _)| *rowid)
                        .filter(|rowid| (low..=high).contains(rowid)),
                );
            }
        }
        rowids
    }

    /// The rows from the one at position `n` (0 = the smallest rowid), in rowid order.
    pub(super) fn starting_at_position(
        &self,
        mut n: usize,
    ) -> impl Iterator<Item = (i64, &StoredRow)> {
        let mut c = 0;
        if n >= self.len {
            c = self.chunks.len();
            n = 0;
        } else {
            while n >= self.chunks[c].len() {
                n -= self.chunks[c].len();
                c += 1;
            }
        }
        self.rows_from(c, n)
    }
}

/// Rows in rowid order from some place on: the rest of the chunk being read (a chunk's
/// ring buffer is at most two runs of memory, `current` and `pending`), then the chunks
/// after it. Reading one row is one step of a slice's iterator, as over a plain list.
#[derive(Debug)]
pub(super) struct Rows<'a> {
    current: std::slice::Iter<'a, (i64, StoredRow)>,
    pending: &'a [(i64, StoredRow)],
    chunks: std::slice::Iter<'a, VecDeque<(i64, StoredRow)>>,
}

impl<'a> Iterator for Rows<'a> {
    type Item = (i64, &'a StoredRow);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some((id, row)) = self.current.next() {
                return Some((*id, row));
            }
            if self.pending.is_empty() {
                let (front, back) = self.chunks.next()?.as_slices();
                self.current = front.iter();
                self.pending = back;
            } else {
                self.current = std::mem::take(&mut self.pending).iter();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::device::table::Value;

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

    fn row(tag: u64) -> StoredRow {
        StoredRow::new(vec![Value::int(i128::from(tag))])
    }

    /// The rowids of the `n` oldest rows (all of them when there are fewer), taken out.
    fn take_first(map: &mut RowMap, n: usize) -> Vec<i64> {
        std::iter::from_fn(|| map.pop_first())
            .take(n)
            .map(|(id, _)| id)
            .collect()
    }

    fn tag(row: &StoredRow) -> Vec<Value> {
        row.to_vec()
    }

    /// The map against a B-tree holding the same rows: every lookup, walk and position.
    fn check(map: &RowMap, model: &BTreeMap<i64, u64>) {
        assert_eq!(map.len(), model.len());
        assert_eq!(map.is_empty(), model.is_empty());
        assert_eq!(map.last_rowid(), model.keys().next_back().copied());
        let expected: Vec<(i64, Vec<Value>)> =
            model.iter().map(|(id, t)| (*id, tag(&row(*t)))).collect();
        let walked: Vec<(i64, Vec<Value>)> = map.iter().map(|(id, r)| (id, tag(r))).collect();
        assert_eq!(walked, expected);
        assert!(map.keys().eq(model.keys().copied()));
        for (low, high) in [(i64::MIN, i64::MAX), (0, 0), (1, 300), (5, 4), (250, 600)]
            .into_iter()
            .chain(
                expected
                    .iter()
                    .step_by(53)
                    .map(|(id, _)| (id - 3, id + 260)),
            )
        {
            assert_eq!(
                map.rowids_between(low, high),
                model
                    .range(low..=high.max(low))
                    .map(|(id, _)| *id)
                    .filter(|id| *id <= high)
                    .collect::<Vec<_>>(),
                "rowids from {low} to {high}"
            );
        }
        for (n, (rowid, _)) in expected.iter().enumerate().step_by(37) {
            assert_eq!(
                map.starting_at_position(n).next().map(|(id, _)| id),
                Some(*rowid)
            );
            assert!(
                map.starting_at_rowid(*rowid)
                    .map(|(id, _)| id)
                    .eq(model.range(*rowid..).map(|(id, _)| *id))
            );
            // Just above a present rowid: starts at the next one.
            assert_eq!(
                map.starting_at_rowid(rowid + 1).next().map(|(id, _)| id),
                model.range(rowid + 1..).next().map(|(id, _)| *id)
            );
            assert_eq!(
                map.get(*rowid).map(tag),
                model.get(rowid).map(|t| tag(&row(*t)))
            );
        }
        assert_eq!(
            map.starting_at_position(model.len())
                .next()
                .map(|(id, _)| id),
            None
        );
        assert!(
            map.starting_at_position(0)
                .map(|(id, _)| id)
                .eq(model.keys().copied())
        );
        assert!(map.chunks.iter().all(|c| !c.is_empty() && c.len() <= CHUNK));
        assert_eq!(map.lasts.len(), map.chunks.len());
        for (chunk, last) in map.chunks.iter().zip(&map.lasts) {
            assert_eq!(chunk.back().map(|(id, _)| *id), Some(*last));
        }
    }

    #[test]
    fn rows_follow_inserts_replacements_and_removals_like_a_btree() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut map = RowMap::default();
        let mut model = BTreeMap::new();
        for round in 0..30_000u64 {
            // Mostly appends, some inserts anywhere, removals of a third of the attempts.
            let rowid = match rng.next() % 3 {
                0 => model.keys().next_back().map_or(1, |last| last + 1),
                _ => (rng.next() % 5_000) as i64 - 100,
            };
            if rng.next() % 3 == 0 {
                assert_eq!(
                    map.remove(rowid).map(|r| tag(&r)),
                    model.remove(&rowid).map(|t| tag(&row(t)))
                );
                assert!(!map.contains_key(rowid));
            } else {
                assert_eq!(
                    map.insert(rowid, row(round)).map(|r| tag(&r)),
                    model.insert(rowid, round).map(|t| tag(&row(t)))
                );
                assert!(map.contains_key(rowid));
            }
            if rng.next() % 7 == 0
                && let Some(r) = map.get_mut(rowid)
            {
                *r = row(round + 1_000_000);
                model.insert(rowid, round + 1_000_000);
            }
            if round % 997 == 0 {
                let n = (rng.next() % 300) as usize;
                let expected: Vec<i64> = model.keys().take(n).copied().collect();
                let taken = take_first(&mut map, n);
                assert_eq!(taken, expected);
                for rowid in expected {
                    model.remove(&rowid);
                }
            }
            if round % 1_000 == 0 {
                check(&map, &model);
            }
        }
        check(&map, &model);
        // Emptied, the map is as new.
        for rowid in model.keys().copied().collect::<Vec<_>>() {
            assert!(map.remove(rowid).is_some());
        }
        model.clear();
        check(&map, &model);
        assert!(map.chunks.is_empty());
    }

    #[test]
    fn ascending_rowids_reach_the_rows_there_are_and_only_those() {
        let mut rng = Rng(0x2545_f491_4f6c_dd1d);
        let mut map = RowMap::default();
        let mut model = BTreeMap::new();
        // Rowids with gaps, over many chunks, the first chunk's front taken.
        for rowid in 0..3_000i64 {
            if rng.next() % 4 != 0 {
                map.insert(rowid, row(rowid as u64));
                model.insert(rowid, rowid as u64);
            }
        }
        for rowid in take_first(&mut map, 17) {
            model.remove(&rowid);
        }
        for round in 0..200u64 {
            // A run of neighbours, then scattered rowids, some absent or out of range.
            let start = (rng.next() % 3_100) as i64 - 50;
            let mut rowids: Vec<i64> = (start..start + (rng.next() % 400) as i64).collect();
            // Every other round a run alone (walked with the rows), or with others.
            if round % 2 == 1 {
                rowids.extend((0..(rng.next() % 50)).map(|_| (rng.next() % 3_200) as i64 - 100));
            }
            rowids.sort_unstable();
            rowids.dedup();
            let mut seen = Vec::new();
            map.for_each_ascending_mut(&rowids, |rowid, stored| {
                seen.push(rowid);
                *stored = row(1_000_000 + round);
            });
            let expected: Vec<i64> = rowids
                .iter()
                .copied()
                .filter(|id| model.contains_key(id))
                .collect();
            assert_eq!(seen, expected);
            for rowid in expected {
                model.insert(rowid, 1_000_000 + round);
            }
        }
        check(&map, &model);
    }

    #[test]
    fn a_chunk_whose_front_left_is_read_across_its_wrapped_buffer() {
        // A log kept as a ring: rows leave the first chunk's front one at a time, then
        // rows go in near its front, so its buffer wraps around into two runs.
        let mut map = RowMap::default();
        let mut model = BTreeMap::new();
        for rowid in (2..=2 * 3 * CHUNK as i64).step_by(2) {
            map.insert(rowid, row(rowid as u64));
            model.insert(rowid, rowid as u64);
        }
        for _ in 0..10 {
            let (rowid, _) = map.pop_first().expect("a row");
            assert_eq!(model.pop_first().map(|(id, _)| id), Some(rowid));
        }
        for rowid in (23..63).step_by(2) {
            map.insert(rowid, row(rowid as u64));
            model.insert(rowid, rowid as u64);
        }
        assert!(
            !map.chunks[0].as_slices().1.is_empty(),
            "the first chunk's buffer wraps"
        );
        check(&map, &model);
        for low in 0..70 {
            assert!(
                map.starting_at_rowid(low)
                    .map(|(id, _)| id)
                    .eq(model.range(low..).map(|(id, _)| *id))
            );
        }
        for n in 0..CHUNK + 2 {
            assert!(
                map.starting_at_position(n)
                    .map(|(id, _)| id)
                    .eq(model.keys().skip(n).copied())
            );
        }
    }

    #[test]
    fn appended_rows_fill_their_chunks_and_sorted_rows_load_alike() {
        let mut map = RowMap::default();
        for rowid in 1..=(3 * CHUNK as i64 + 5) {
            assert!(map.insert(rowid, row(rowid as u64)).is_none());
        }
        assert_eq!(map.chunks.len(), 4);
        assert!(map.chunks[..3].iter().all(|c| c.len() == CHUNK));
        let loaded = RowMap::from_sorted(map.iter().map(|(id, r)| (id, r.clone())));
        assert!(
            loaded
                .iter()
                .map(|(id, r)| (id, tag(r)))
                .eq(map.iter().map(|(id, r)| (id, tag(r))))
        );
        assert_eq!(loaded.lasts, map.lasts);
        // The oldest rows taken: whole chunks and part of the next.
        let oldest = take_first(&mut map, CHUNK + 3);
        assert!(oldest.into_iter().eq(1..=(CHUNK as i64 + 3)));
        assert_eq!(map.len(), 2 * CHUNK + 2);
        assert_eq!(map.keys().next(), Some(CHUNK as i64 + 4));
        assert_eq!(map.lasts.len(), map.chunks.len());
        assert_eq!(take_first(&mut map, usize::MAX).len(), 2 * CHUNK + 2);
        assert!(map.is_empty() && map.chunks.is_empty() && map.lasts.is_empty());
        // Extremes of the rowid range.
        let mut edges = RowMap::default();
        for rowid in [0, i64::MAX, i64::MIN, -1, 1] {
            edges.insert(rowid, row(7));
        }
        assert!(edges.keys().eq([i64::MIN, -1, 0, 1, i64::MAX]));
        assert_eq!(edges.starting_at_rowid(i64::MAX).count(), 1);
        assert_eq!(
            edges
                .starting_at_rowid(2)
                .map(|(id, _)| id)
                .collect::<Vec<_>>(),
            [i64::MAX]
        );
    }

    #[test]
    fn a_ring_rotated_keeps_its_rows_in_no_more_chunks_than_before_and_one() {
        // Sizes around the chunk's: one row, part of a chunk, chunks full and not; rows
        // moved one at a time and in runs of every length around the chunk's.
        for size in [1, 5, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 7] {
            let mut map = RowMap::default();
            let mut model = BTreeMap::new();
            for rowid in 1..=size as i64 {
                map.insert(rowid, row(rowid as u64));
                model.insert(rowid, rowid as u64);
            }
            assert_eq!(
                RowMap::default().rotate_firsts(1, 3, |_, _, _| unreachable!()),
                0,
                "nothing to rotate"
            );
            let chunks = map.chunks.len();
            let mut next = size as i64 + 1;
            for n in [
                1,
                1,
                2,
                3,
                CHUNK - 1,
                CHUNK,
                1,
                CHUNK + 1,
                7,
                2 * CHUNK + 5,
                0,
                1,
            ] {
                let expected: Vec<i64> = (0..n)
                    .map_while(|_| model.pop_first().map(|(id, _)| id))
                    .collect();
                let mut oldest = Vec::new();
                let moved = map.rotate_firsts(next, n, |i, old, stored| {
                    assert_eq!(i, oldest.len());
                    assert_eq!(
                        tag_of(stored),
                        old as u64 + if old > size as i64 { 1_000_000 } else { 0 }
                    );
                    *stored = row(next as u64 + i as u64 + 1_000_000);
                    oldest.push(old);
                });
                // A ring smaller than the run gives rows appended in the same run.
                assert_eq!(moved, n);
                for i in 0..n as i64 {
                    model.insert(next + i, (next + i) as u64 + 1_000_000);
                }
                let expected: Vec<i64> = expected.into_iter().chain(next..).take(n).collect();
                assert_eq!(oldest, expected);
                // Keep the model to the ring's size.
                while model.len() > size {
                    model.pop_first();
                }
                next += n as i64;
                assert!(
                    map.chunks.len() <= chunks + 1,
                    "chunks: {}",
                    map.chunks.len()
                );
                check(&map, &model);
            }
        }
    }

    #[test]
    fn a_ring_rotated_by_runs_of_every_length_ends_each_where_its_rows_are() {
        // Runs of 1, 2, 3, … rows in turn: between them, every place a run can start or
        // end in a chunk, and runs ending with a whole chunk handed over; then the device's
        // log ring (10,000 rows) taking a thousand rows a write, many times round.
        let runs = (1..=2 * CHUNK + 3).map(|n| (3 * CHUNK + 7, n));
        let log = std::iter::repeat_n((39 * CHUNK + 16, 1_000), 40).chain([(39 * CHUNK + 16, 7)]);
        let mut rings: BTreeMap<usize, (RowMap, BTreeMap<i64, u64>, usize, i64)> = BTreeMap::new();
        for (size, n) in runs.chain(log) {
            let (map, model, chunks, next) = rings.entry(size).or_insert_with(|| {
                let mut map = RowMap::default();
                let mut model = BTreeMap::new();
                for rowid in 1..=size as i64 {
                    map.insert(rowid, row(rowid as u64));
                    model.insert(rowid, rowid as u64);
                }
                let chunks = map.chunks.len();
                (map, model, chunks, size as i64 + 1)
            });
            let (chunks, next) = (*chunks, next);
            assert_eq!(
                map.rotate_firsts(*next, n, |_, _, stored| {
                    *stored = row(tag_of(stored) + 1);
                }),
                n
            );
            for i in 0..n as i64 {
                let oldest = model.pop_first().expect("a full ring").1;
                model.insert(*next + i, oldest + 1);
            }
            *next += n as i64;
            check(map, model);
            assert!(
                map.chunks.len() <= chunks + 1,
                "chunks: {}",
                map.chunks.len()
            );
        }
    }

    fn tag_of(stored: &StoredRow) -> u64 {
        stored[0].as_int().expect("a tag") as u64
    }
}
