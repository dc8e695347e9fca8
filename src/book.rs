//! The book (`book/src/*.md`), compiled as doc-tests: every Rust block in a chapter runs against the crate.
//!
//! One item per chapter; `tests/book_summary.rs` checks that every chapter listed in `SUMMARY.md` has one.

#[doc = include_str!("../book/src/introduction.md")]
pub struct Introduction;

#[doc = include_str!("../book/src/getting-started.md")]
pub struct GettingStarted;

#[doc = include_str!("../book/src/tasklets.md")]
pub struct Tasklets;

#[doc = include_str!("../book/src/messages.md")]
pub struct Messages;

#[doc = include_str!("../book/src/conditions.md")]
pub struct Conditions;

#[doc = include_str!("../book/src/io.md")]
pub struct Io;

#[doc = include_str!("../book/src/processes.md")]
pub struct Processes;

#[doc = include_str!("../book/src/signals.md")]
pub struct Signals;

#[doc = include_str!("../book/src/runtime.md")]
pub struct RuntimeChapter;

#[doc = include_str!("../book/src/supervision.md")]
pub struct Supervision;

#[doc = include_str!("../book/src/lifecycle.md")]
pub struct Lifecycle;

#[doc = include_str!("../book/src/routing.md")]
pub struct Routing;

#[doc = include_str!("../book/src/tokio.md")]
pub struct LivingBesideTokio;

#[doc = include_str!("../book/src/tutorial-chat.md")]
pub struct TutorialChat;

#[doc = include_str!("../book/src/tutorial-pipeline.md")]
pub struct TutorialPipeline;

#[doc = include_str!("../book/src/scaling-out.md")]
pub struct ScalingOut;

#[doc = include_str!("../book/src/chat.md")]
pub struct ChatExample;

#[doc = include_str!("../book/src/pipeline.md")]
pub struct PipelineExample;

#[doc = include_str!("../book/src/kiwi.md")]
pub struct ComingFromKiwi;

#[doc = include_str!("../book/src/performance.md")]
pub struct Performance;

#[doc = include_str!("../book/src/benchmarking.md")]
pub struct Benchmarking;

#[doc = include_str!("../README.md")]
pub struct Readme;

#[doc = include_str!("../book/src/inside.md")]
pub struct Inside;

#[doc = include_str!("../book/src/observing.md")]
pub struct Observing;

#[doc = include_str!("../book/src/testing.md")]
pub struct TestingTasklets;
