#[tasklets::task(restart)]
async fn worker(_cx: tasklets::Cx) {}

fn main() {}
