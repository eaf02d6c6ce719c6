//! The messages waiting in a queue, in the order they are delivered: one line (FIFO), or
//! one line per priority level (the most urgent non-empty level first). Each entry is a
//! message and when it was enqueued. Pushing and popping cost O(1) per message (O(levels)
//! to find the first non-empty level).

use crate::engine::CallId;
use crate::time::SimTime;
use std::collections::VecDeque;

/// A waiting message: its call and when it was enqueued.
pub type Entry = (CallId, SimTime);

/// The waiting messages of a queue.
#[derive(Debug)]
pub enum Waiting {
    /// First in, first out.
    Fifo(VecDeque<Entry>),
    /// One line per level, level 0 delivered first; `len` counts them all.
    Levels {
        /// The lines, by level.
        lines: Vec<VecDeque<Entry>>,
        /// Messages over every line.
        len: usize,
    },
}

impl Waiting {
    /// An empty FIFO line (`levels` 0) or `levels` priority lines.
    pub fn new(levels: usize) -> Self {
        if levels == 0 {
            Waiting::Fifo(VecDeque::new())
        } else {
            Waiting::Levels {
                lines: (0..levels).map(|_| VecDeque::new()).collect(),
                len: 0,
            }
        }
    }

    /// Messages waiting.
    #[inline]
    pub fn len(&self) -> usize {
        match self {
            Waiting::Fifo(q) => q.len(),
            Waiting::Levels { len, .. } => *len,
        }
    }

    /// True when none waits.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A new message at level `level`, behind the others of its level.
    #[inline]
    pub fn push_back(&mut self, level: u8, e: Entry) {
        match self {
            Waiting::Fifo(q) => q.push_back(e),
            Waiting::Levels { lines, len } => {
                lines[level as usize].push_back(e);
                *len += 1;
            }
        }
    }

    /// A message visible again, at the head of its level's line.
    #[inline]
    pub fn push_front(&mut self, level: u8, e: Entry) {
        match self {
            Waiting::Fifo(q) => q.push_front(e),
            Waiting::Levels { lines, len } => {
                lines[level as usize].push_front(e);
                *len += 1;
            }
        }
    }

    /// The next message to deliver: the head of the line (of the most urgent level).
    #[inline]
    pub fn pop_front(&mut self) -> Option<Entry> {
        match self {
            Waiting::Fifo(q) => q.pop_front(),
            Waiting::Levels { lines, len } => {
                let e = lines.iter_mut().find_map(|q| q.pop_front())?;
                *len -= 1;
                Some(e)
            }
        }
    }

    /// The message a full queue drops to make room: the oldest (of the least urgent level
    /// present).
    pub fn pop_to_drop(&mut self) -> Option<Entry> {
        match self {
            Waiting::Fifo(q) => q.pop_front(),
            Waiting::Levels { lines, len } => {
                let e = lines.iter_mut().rev().find_map(|q| q.pop_front())?;
                *len -= 1;
                Some(e)
            }
        }
    }

    /// When the oldest waiting message was enqueued.
    pub fn oldest(&self) -> Option<SimTime> {
        match self {
            Waiting::Fifo(q) => q.front().map(|e| e.1),
            Waiting::Levels { lines, .. } => {
                lines.iter().filter_map(|q| q.front()).map(|e| e.1).min()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_deliver_the_most_urgent_first_and_drop_the_least_urgent() {
        let t = |n| SimTime(n);
        let mut w = Waiting::new(3);
        w.push_back(2, (1, t(1)));
        w.push_back(0, (2, t(2)));
        w.push_back(1, (3, t(3)));
        w.push_back(0, (4, t(4)));
        w.push_front(1, (5, t(0)));
        assert_eq!(w.len(), 5);
        assert_eq!(w.oldest(), Some(t(0)));
        assert_eq!(w.pop_to_drop(), Some((1, t(1))));
        let order: Vec<CallId> = std::iter::from_fn(|| w.pop_front()).map(|e| e.0).collect();
        assert_eq!(order, vec![2, 4, 5, 3]);
        assert!(w.is_empty());
        let mut f = Waiting::new(0);
        f.push_back(0, (1, t(1)));
        f.push_front(0, (2, t(0)));
        assert_eq!(f.pop_front(), Some((2, t(0))));
        assert_eq!(f.pop_to_drop(), Some((1, t(1))));
    }
}
