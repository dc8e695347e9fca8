#[tasklets::task]
fn double(_cx: tasklets::Cx, x: i32) -> i32 {
    x * 2
}

fn main() {}
