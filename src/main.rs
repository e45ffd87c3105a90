//! `roadsign`: the command users type. It links neither libtorch nor
//! Tesseract, so that its start-up is a native program's (milliseconds, a
//! few MiB); commands and runs that need them continue in `roadsign-ocr` or
//! `roadsign-torch` (see `roadsign::engine`).

fn main() -> std::process::ExitCode {
    roadsign::main(None)
}
