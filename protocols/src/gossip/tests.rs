//! gossip's unit tests, on the shared hand-driven cluster (`testkit::Cluster`), each citing
//! the SWIM paper's section (Das, Gupta and Motivala, DSN 2002) or serf's behaviour.

use super::*;
use crate::kv::OpResult;
use crate::params::Params;
use crate::testkit::{configs, get, n, put, Cluster};

type Harness = Cluster<Gossip>;

fn harness(count: u16, bugs: &[&'static str]) -> Harness {
    let params = Params::defaults(Gossip::info().params);
    Cluster::boot_all(configs(count, &params, bugs), |_| {}).unchecked()
}

#[test]
fn scaling_follows_memberlist_and_serf() {
    assert_eq!(log10_ceil(1), 1);
    assert_eq!(log10_ceil(9), 1);
    assert_eq!(log10_ceil(10), 2);
    assert_eq!(log10_ceil(50), 2);
    let p = Span::millis(100);
    assert_eq!(suspicion_timeout(4, 5, p), Span::millis(400));
    assert_eq!(suspicion_timeout(4, 100, p), Span::millis(800));
}

#[test]
fn placeholder_get_put() {
    let mut h = harness(3, &[]);
    assert_eq!(h.request(0, put(1, "a")), crate::testkit::ok("a"));
    let id = h.submit_next(1, get(1));
    h.deliver_all();
    assert_eq!(h.reply(id), Some(&crate::testkit::ok("a")));
    let _ = n(0);
    let _ = OpResult::NotFound;
}
