//! An immutable, persistent sequence of lot arrival indices kept sorted by
//! a key: the policy order of a SKU's lots, and its lots by id.
//!
//! Owns: [`Tree`], its insertion (path copying, O(log n) time and
//! allocation), position search (`partition_point`) and iteration from a
//! position.
//!
//! Must never: store keys or change a published tree. Keys are computed
//! from a lot's facts by the caller's key function (facts never change), so
//! an entry costs 4 bytes; a new lot yields a new tree that shares every
//! node off its path with the old one, which stays valid for whoever reads
//! it.
//!
//! A tree whose order is the arrival order itself (lots received in policy
//! order, the common case) is [`Tree::Identity`]: no nodes at all, and
//! receiving one more lot in order changes nothing.

use crate::sync::Arc;

/// Entries per node at most.
const FANOUT: usize = 64;

/// Arrival indices in the order of some key (see the module docs).
#[derive(Clone, Debug, Default)]
pub(crate) enum Tree {
    /// `0, 1, …, len - 1` for whatever `len` the caller reads at.
    #[default]
    Identity,
    Nodes(Node),
}

#[derive(Clone, Debug)]
pub(crate) enum Node {
    Leaf(Arc<[u32]>),
    Inner(Arc<[Child]>),
}

#[derive(Clone, Debug)]
pub(crate) struct Child {
    /// The subtree's last entry (its key bounds the subtree).
    last: u32,
    len: u32,
    node: Node,
}

impl Node {
    fn len(&self) -> u32 {
        match self {
            Node::Leaf(entries) => entries.len() as u32,
            Node::Inner(children) => children.iter().map(|child| child.len).sum(),
        }
    }

    fn last(&self) -> u32 {
        match self {
            Node::Leaf(entries) => *entries.last().expect("nodes are never empty"),
            Node::Inner(children) => children.last().expect("nodes are never empty").last,
        }
    }

    fn child(node: Node) -> Child {
        Child { last: node.last(), len: node.len(), node }
    }

    /// `self` with `value` inserted where `key` sorts it; one node, or two
    /// when it split.
    fn insert<K: Ord>(&self, value: u32, key: &impl Fn(u32) -> K) -> (Node, Option<Node>) {
        let new_key = key(value);
        match self {
            Node::Leaf(entries) => {
                let at = entries.partition_point(|&other| key(other) < new_key);
                let mut next = Vec::with_capacity(entries.len() + 1);
                next.extend_from_slice(&entries[..at]);
                next.push(value);
                next.extend_from_slice(&entries[at..]);
                split(next, Node::Leaf)
            }
            Node::Inner(children) => {
                let at = children.partition_point(|child| key(child.last) < new_key).min(children.len() - 1);
                let (left, right) = children[at].node.insert(value, key);
                let mut next = Vec::with_capacity(children.len() + 1);
                next.extend_from_slice(&children[..at]);
                next.push(Node::child(left));
                next.extend(right.map(Node::child));
                next.extend_from_slice(&children[at + 1..]);
                split(next, Node::Inner)
            }
        }
    }
}

/// One node from `entries`, or two halves when it outgrew [`FANOUT`].
fn split<T, F: Fn(Arc<[T]>) -> Node>(mut entries: Vec<T>, node: F) -> (Node, Option<Node>) {
    if entries.len() <= FANOUT {
        return (node(entries.into()), None);
    }
    let right = entries.split_off(entries.len() / 2);
    (node(entries.into()), Some(node(right.into())))
}

impl Tree {
    /// Entries, for a tree read at a lot count of `lots`.
    #[cfg(all(test, not(stockroom_loom)))]
    pub(crate) fn len(&self, lots: u32) -> u32 {
        match self {
            Tree::Identity => lots,
            Tree::Nodes(node) => node.len(),
        }
    }

    /// This tree with arrival `lots` (the next lot) added; `lots` is the
    /// count before it. Stays an identity while lots arrive in key order.
    pub(crate) fn with<K: Ord>(&self, lots: u32, key: impl Fn(u32) -> K) -> Tree {
        let value = lots;
        match self {
            Tree::Identity if value == 0 || key(value - 1) < key(value) => Tree::Identity,
            Tree::Identity => {
                // Materialize 0..lots, then insert as for any tree.
                let mut root = Tree::from_sorted((0..lots).collect());
                root = root.with(lots, key);
                root
            }
            Tree::Nodes(node) => {
                debug_assert_eq!(node.len(), lots, "a tree holds every lot before the new one");
                match node.insert(value, &key) {
                    (only, None) => Tree::Nodes(only),
                    (left, Some(right)) => Tree::Nodes(Node::Inner(vec![Node::child(left), Node::child(right)].into())),
                }
            }
        }
    }

    /// A tree of `entries`, which must already be in key order.
    pub(crate) fn from_sorted(entries: Vec<u32>) -> Tree {
        if entries.is_empty() {
            return Tree::Identity;
        }
        let mut level: Vec<Node> = entries.chunks(FANOUT).map(|chunk| Node::Leaf(chunk.into())).collect();
        while level.len() > 1 {
            level = level
                .chunks(FANOUT)
                .map(|chunk| Node::Inner(chunk.iter().cloned().map(Node::child).collect()))
                .collect();
        }
        Tree::Nodes(level.pop().expect("one root"))
    }

    /// The number of leading entries for which `before` holds (`before`
    /// must hold for a prefix of the order, like `slice::partition_point`).
    pub(crate) fn partition_point(&self, lots: u32, before: impl Fn(u32) -> bool) -> u32 {
        match self {
            Tree::Identity => {
                let (mut low, mut high) = (0u32, lots);
                while low < high {
                    let middle = low + (high - low) / 2;
                    if before(middle) { low = middle + 1 } else { high = middle }
                }
                low
            }
            Tree::Nodes(node) => {
                let mut node = node;
                let mut skipped = 0;
                loop {
                    match node {
                        Node::Leaf(entries) => return skipped + entries.partition_point(|&entry| before(entry)) as u32,
                        Node::Inner(children) => {
                            let at = children.partition_point(|child| before(child.last));
                            if at == children.len() {
                                return skipped + node.len();
                            }
                            skipped += children[..at].iter().map(|child| child.len).sum::<u32>();
                            node = &children[at].node;
                        }
                    }
                }
            }
        }
    }

    /// Entries from position `from` on, in order.
    pub(crate) fn iter_from(&self, lots: u32, from: u32) -> Iter<'_> {
        match self {
            Tree::Identity => Iter { range: from..lots, stack: Vec::new(), leaf: &[] },
            Tree::Nodes(node) => {
                let mut iter = Iter { range: 0..0, stack: Vec::new(), leaf: &[] };
                let mut node = node;
                let mut skip = from;
                loop {
                    match node {
                        Node::Leaf(entries) => {
                            iter.leaf = entries.get(skip as usize..).unwrap_or(&[]);
                            return iter;
                        }
                        Node::Inner(children) => {
                            let mut at = 0;
                            while at < children.len() && skip >= children[at].len {
                                skip -= children[at].len;
                                at += 1;
                            }
                            if at == children.len() {
                                return iter;
                            }
                            iter.stack.push((children, at + 1));
                            node = &children[at].node;
                        }
                    }
                }
            }
        }
    }
}

/// Iterator over a [`Tree`] from a position.
#[derive(Debug)]
pub(crate) struct Iter<'a> {
    range: core::ops::Range<u32>,
    /// Inner nodes on the path, with the next child to visit in each.
    stack: Vec<(&'a [Child], usize)>,
    leaf: &'a [u32],
}

impl Iterator for Iter<'_> {
    type Item = u32;

    fn next(&mut self) -> Option<u32> {
        if let Some(value) = self.range.next() {
            return Some(value);
        }
        loop {
            if let Some((&first, rest)) = self.leaf.split_first() {
                self.leaf = rest;
                return Some(first);
            }
            let (children, at) = self.stack.last_mut()?;
            if *at == children.len() {
                self.stack.pop();
                continue;
            }
            let mut node = &children[*at].node;
            *at += 1;
            loop {
                match node {
                    Node::Leaf(entries) => {
                        self.leaf = entries;
                        break;
                    }
                    Node::Inner(children) => {
                        self.stack.push((children, 1));
                        node = &children[0].node;
                    }
                }
            }
        }
    }
}

#[cfg(all(test, not(stockroom_loom), not(stockroom_shuttle)))]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn a_tree_is_the_sorted_sequence_at_every_version(keys in proptest::collection::vec(any::<u16>(), 0..600)) {
            // Arrival `i` has key (keys[i], i): unique, like a policy key.
            let key = |arrival: u32| (keys[arrival as usize], arrival);
            let mut tree = Tree::Identity;
            let mut versions = Vec::new();
            for lots in 0..keys.len() as u32 {
                tree = tree.with(lots, key);
                versions.push(tree.clone());
            }
            for (at, tree) in versions.iter().enumerate() {
                let lots = at as u32 + 1;
                let mut expected: Vec<u32> = (0..lots).collect();
                expected.sort_by_key(|&arrival| key(arrival));
                prop_assert_eq!(tree.len(lots), lots);
                prop_assert_eq!(tree.iter_from(lots, 0).collect::<Vec<_>>(), expected.clone());
                for from in [0, lots / 3, lots / 2, lots.saturating_sub(1), lots] {
                    prop_assert_eq!(tree.iter_from(lots, from).collect::<Vec<_>>(), expected[from as usize..].to_vec());
                }
                if let Some(&probe) = expected.get(expected.len() / 2) {
                    let bound = key(probe);
                    let point = tree.partition_point(lots, |arrival| key(arrival) < bound);
                    prop_assert_eq!(point as usize, expected.partition_point(|&arrival| key(arrival) < bound));
                }
            }
        }
    }

    #[test]
    fn lots_in_key_order_keep_the_identity() {
        let mut tree = Tree::Identity;
        for lots in 0..1_000 {
            tree = tree.with(lots, |arrival| arrival);
        }
        assert!(matches!(tree, Tree::Identity));
        assert_eq!(tree.iter_from(1_000, 998).collect::<Vec<_>>(), [998, 999]);
        assert_eq!(tree.partition_point(1_000, |arrival| arrival < 10), 10);
    }

    #[test]
    fn a_large_tree_stays_shallow() {
        let mut tree = Tree::Identity;
        let n = 100_000u32;
        // Reverse order: every lot goes first.
        for lots in 0..n {
            tree = tree.with(lots, core::cmp::Reverse);
        }
        let mut depth = 0;
        let Tree::Nodes(mut node) = tree.clone() else { panic!("not an identity") };
        while let Node::Inner(children) = node {
            depth += 1;
            node = children[0].node.clone();
        }
        assert!(depth <= 4, "depth {depth} for {n} entries");
        assert_eq!(tree.iter_from(n, 0).take(3).collect::<Vec<_>>(), [n - 1, n - 2, n - 3]);
    }
}
