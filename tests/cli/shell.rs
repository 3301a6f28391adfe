//! Shell completions and man pages (issue 35, item 4), generated from the CLI's definition.

use crate::support::Poactl;

#[test]
fn completions_for_each_shell_know_the_commands_and_man_pages_are_one_per_command() {
    for (shell, marker) in [
        ("bash", "complete -F _poactl"),
        ("zsh", "#compdef poactl"),
        ("fish", "complete -c poactl"),
        ("powershell", "Register-ArgumentCompleter"),
    ] {
        let run = Poactl::new(&["completions", shell]).run();
        run.expect_code(0);
        assert!(run.stdout.contains(marker), "{shell}: {}", &run.stdout[..run.stdout.len().min(300)]);
        for command in ["plan", "apply", "drift", "graph", "migrate"] {
            assert!(run.stdout.contains(command), "{shell} completes `{command}`");
        }
    }
    Poactl::new(&["completions", "tcsh"]).run().expect_code(1);

    let dir = tempfile::tempdir().unwrap();
    let run = Poactl::new(&["man", "--dir", dir.path().to_str().unwrap()]).run();
    run.expect_code(0);
    for page in ["poactl.1", "poactl-plan.1", "poactl-apply.1", "poactl-migrate-data.1", "poactl-graph.1"] {
        let text = std::fs::read_to_string(dir.path().join(page)).unwrap_or_else(|_| panic!("no {page}"));
        assert!(text.starts_with(".ie") || text.contains(".TH"), "{page} is roff");
    }
    let plan = std::fs::read_to_string(dir.path().join("poactl-plan.1")).unwrap();
    assert!(plan.contains("detailed\\-exitcode"), "the options are documented");
    assert!(!dir.path().join("poactl-man.1").exists(), "the hidden command has no page");
}
