//! The supervisor on payload events, without storage: input file, script outcome, timeout,
//! synchronous response. Storage transfers are covered by the server's job tests against the
//! embedded S3.

use std::path::Path;
use std::time::Duration;

use base64::Engine;
use model::function::Report;
use supervisor::{ResponseSink, Settings, supervise};

fn settings(dir: &Path, script: &str, timeout: Option<Duration>) -> Settings {
    std::fs::write(
        dir.join("function_config.yaml"),
        "name: test\nlog_level: INFO\n",
    )
    .unwrap();
    std::fs::write(dir.join("script.sh"), script).unwrap();
    Settings {
        config_dir: dir.to_path_buf(),
        providers_dir: dir.join("providers"),
        timeout,
        memory: None,
        pids: None,
        disk: None,
        volume: None,
        result_file: None,
        response: Some(ResponseSink::File(dir.join("response"))),
        result_limit: None,
        marked_log: false,
        env: Vec::new(),
        work_dirs: None,
    }
}

#[tokio::test]
async fn the_executors_directories_are_used_and_left_for_it_to_empty() {
    let dir = tempfile::tempdir().unwrap();
    let (input, output) = (dir.path().join("input"), dir.path().join("output"));
    for made in [&input, &output] {
        std::fs::create_dir(made).unwrap();
    }
    let settings = Settings {
        work_dirs: Some((input.clone(), output.clone())),
        ..settings(
            dir.path(),
            "echo \"$TMP_INPUT_DIR $TMP_OUTPUT_DIR\" > \"$TMP_OUTPUT_DIR/dirs.txt\"\n",
            None,
        )
    };
    let report = supervise(&settings, b"aGVsbG8=".to_vec()).await;
    assert_eq!(report, Report::Succeeded { outputs: vec![] });
    let seen = std::fs::read_to_string(output.join("dirs.txt")).unwrap();
    assert_eq!(
        seen.trim(),
        format!("{} {}", input.display(), output.display())
    );
    assert_eq!(
        std::fs::read_dir(&input).unwrap().count(),
        1,
        "the event's file"
    );
}

#[tokio::test]
async fn a_payload_becomes_the_input_file_and_one_output_the_response() {
    let dir = tempfile::tempdir().unwrap();
    let settings = settings(
        dir.path(),
        "tr a-z A-Z < \"$INPUT_FILE_PATH\" > \"$TMP_OUTPUT_DIR/out.txt\"\n",
        None,
    );
    let report = supervise(&settings, b"aGVsbG8=".to_vec()).await;
    assert_eq!(report, Report::Succeeded { outputs: vec![] });
    let response = std::fs::read(dir.path().join("response")).unwrap();
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(response)
        .unwrap();
    assert_eq!(decoded, b"HELLO");
}

#[tokio::test]
async fn without_outputs_the_response_is_what_the_script_printed() {
    let dir = tempfile::tempdir().unwrap();
    let settings = settings(
        dir.path(),
        "echo \"got $(cat \"$INPUT_FILE_PATH\")\"\n",
        None,
    );
    let report = supervise(&settings, br#"{"n": 1}"#.to_vec()).await;
    assert_eq!(report, Report::Succeeded { outputs: vec![] });
    assert_eq!(
        std::fs::read_to_string(dir.path().join("response")).unwrap(),
        "got {\"n\": 1}\n"
    );
}

#[tokio::test]
async fn a_failing_script_is_a_final_failure_with_its_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    let settings = settings(dir.path(), "echo broken >&2\nexit 3\n", None);
    let report = supervise(&settings, b"{}".to_vec()).await;
    assert!(
        matches!(&report, Report::Failed { exit_code: Some(3), reason, .. } if reason.contains("code 3")),
        "{report:?}"
    );
    assert_eq!(report.exit_code(), 3);
}

/// A script that leaves a process running finishes when it exits (the process would hold its
/// output open), and the process ends with it: a warm worker's next request never meets it.
#[tokio::test]
async fn what_a_script_leaves_running_ends_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("pid");
    let script = format!("sleep 300 &\necho $! > {}\necho done\n", pid_file.display());
    let settings = settings(dir.path(), &script, Some(Duration::from_secs(60)));
    let started = std::time::Instant::now();
    let report = supervise(&settings, b"{}".to_vec()).await;
    assert!(matches!(report, Report::Succeeded { .. }), "{report:?}");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "waited for the background process"
    );
    let pid: i32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(ends_soon(pid).await, "process {pid} outlived its script");
}

/// Whether the process is gone (or a zombie) within 2 s: a SIGKILL sent to its group is
/// delivered asynchronously, so it may still show for a moment after the supervisor returns.
async fn ends_soon(pid: i32) -> bool {
    for _ in 0..40 {
        let alive = std::path::Path::new(&format!("/proc/{pid}")).exists()
            && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .unwrap_or_default()
                .contains(") Z ");
        if !alive {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

#[tokio::test]
async fn a_timeout_kills_everything_the_script_started() {
    let dir = tempfile::tempdir().unwrap();
    let pids = dir.path().join("pids");
    let script = format!(
        "sleep 300 &\necho $! > {p}\necho $$ >> {p}\nsleep 300\n",
        p = pids.display()
    );
    let settings = settings(dir.path(), &script, Some(Duration::from_secs(1)));
    let report = supervise(&settings, b"{}".to_vec()).await;
    assert!(
        matches!(&report, Report::Failed { exit_code: None, reason, .. } if reason.contains("longer than 1s")),
        "{report:?}"
    );
    let pids = std::fs::read_to_string(&pids).unwrap();
    for pid in pids.lines() {
        let pid: i32 = pid.trim().parse().unwrap();
        // Reaped or gone: the background sleep and the shell must not survive the timeout.
        assert!(ends_soon(pid).await, "process {pid} survived the timeout");
    }
}

#[tokio::test]
async fn a_missing_configuration_is_a_platform_error() {
    let dir = tempfile::tempdir().unwrap();
    let settings = Settings {
        config_dir: dir.path().join("absent"),
        ..settings(dir.path(), "true\n", None)
    };
    let report = supervise(&settings, b"{}".to_vec()).await;
    assert!(matches!(report, Report::Error { reason } if reason.contains("function_config.yaml")));
}

#[test]
fn a_report_is_cut_to_fit_a_termination_message() {
    let outputs: Vec<String> = (0..500)
        .map(|i| format!("out/folder/file-{i:04}.txt"))
        .collect();
    let report = Report::Succeeded {
        outputs: outputs.clone(),
    };
    let (text, _) = report.to_json_within(4096);
    assert!(text.len() <= 4096, "{}", text.len());
    let Report::Succeeded { outputs: kept } = serde_json::from_str(&text).unwrap() else {
        panic!("{text}");
    };
    assert!(kept.len() > 50 && kept.len() < 500);
    assert_eq!(kept[..], outputs[..kept.len()]);
    let long = Report::Error {
        reason: "é".repeat(5000),
    };
    let (text, _) = long.to_json_within(4096);
    assert!(text.len() <= 4096);
    assert!(matches!(
        serde_json::from_str(&text).unwrap(),
        Report::Error { .. }
    ));
    // A report that fits is unchanged.
    let small = Report::Succeeded {
        outputs: vec!["a/b".into()],
    };
    assert_eq!(
        small.to_json_within(4096).0,
        serde_json::to_string(&small).unwrap()
    );
}
