mod common;
use common::*;

#[test]
fn run_true_exits_zero() {
    if !require_root() {
        return;
    }
    let b = Bundle::new(&["/bin/true"]);
    let c = Ctr::new("smoke");
    let (code, _, err) = c.run_fg(&b);
    assert_eq!(code, 0, "{err}");
    assert!(!c.state_dir().exists());
}
