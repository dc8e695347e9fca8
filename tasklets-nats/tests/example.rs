//! The `two_nodes` example (also the code of the book's "Scaling out" chapter) runs against a real
//! nats-server.

mod support;

#[path = "../examples/two_nodes.rs"]
mod two_nodes;

#[test]
fn the_two_nodes_example_greets_across_nodes() {
    let Some(nats) = support::nats_server("the_two_nodes_example") else {
        return;
    };
    let ns = format!("example{}", std::process::id());
    let lines = two_nodes::run(&nats.url, &ns).unwrap();
    assert_eq!(lines, ["hello, a", "bye, a"]);
}
