fn main() -> std::process::ExitCode {
    poactl::main()
}
