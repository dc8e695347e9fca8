#[tasklets::task]
async fn nothing() {}

fn main() {}
