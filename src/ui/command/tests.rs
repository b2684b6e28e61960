//! Tests of the command grammar: the table, parsing, usage errors and `/help`, and random lines.

mod unit {
    use super::super::*;

    fn ok(line: &str) -> Command {
        parse(line).unwrap().unwrap()
    }

    fn err(line: &str) -> ParseError {
        parse(line).unwrap_err()
    }

    fn room(command: RoomCommand) -> Command {
        Command::Room(command)
    }

    #[test]
    fn plain_text_is_said() {
        assert_eq!(ok("hello there"), Command::Say("hello there".into()));
        assert_eq!(ok("//not a command"), Command::Say("/not a command".into()));
        assert_eq!(ok("  leading spaces"), Command::Say("  leading spaces".into()));
    }

    #[test]
    fn blank_lines_are_nothing() {
        assert_eq!(parse("").unwrap(), None);
        assert_eq!(parse("   \r\n").unwrap(), None);
    }

    #[test]
    fn the_table_is_well_formed() {
        for (i, spec) in COMMANDS.iter().enumerate() {
            assert!(!spec.name.is_empty() && spec.name.bytes().all(|b| b.is_ascii_lowercase()), "{}", spec.name);
            assert!(COMMANDS[..i].iter().all(|c| c.name != spec.name), "/{} twice", spec.name);
            assert_eq!(spec.examples[0].split_whitespace().next(), Some(format!("/{}", spec.name).as_str()));
            for arg in spec.args {
                assert!(!arg.usage.is_empty() && !arg.usage.contains(char::is_whitespace), "{}", spec.usage());
            }
        }
    }

    #[test]
    fn every_command_in_the_table_parses_its_example() {
        for spec in COMMANDS {
            assert!(!spec.examples.is_empty(), "/{} has no example", spec.name);
            for example in spec.examples {
                let parsed = parse(example);
                assert!(matches!(parsed, Ok(Some(_))), "{example} -> {parsed:?}");
            }
        }
    }

    #[test]
    fn usage_lines_come_from_the_arguments() {
        assert_eq!(spec("kick").unwrap().usage(), "/kick USER [ROOM]");
        assert_eq!(spec("msg").unwrap().usage(), "/msg USER TEXT");
        assert_eq!(spec("focus").unwrap().args_usage(), "ROOM|@USER");
        assert_eq!(spec("quit").unwrap().usage(), "/quit");
    }

    #[test]
    fn commands_with_arguments() {
        assert_eq!(ok("/login alice"), Command::Login { user: "alice".into() });
        assert_eq!(ok("/nick  Alice  W "), Command::Nick { nick: "Alice  W".into() });
        assert_eq!(ok("/join #lobby"), room(RoomCommand::Join("lobby".into())));
        assert_eq!(ok("/leave"), room(RoomCommand::Leave(None)));
        assert_eq!(ok("/rooms"), room(RoomCommand::List));
        assert_eq!(ok("/kick @bob #lobby"), room(RoomCommand::Kick { user: "bob".into(), room: Some("lobby".into()) }));
        assert_eq!(
            ok("/msg bob  hi  there "),
            Command::Direct(DirectCommand::Send { user: "bob".into(), text: "hi  there".into() })
        );
        assert_eq!(ok("/query @bob"), Command::Direct(DirectCommand::Query("bob".into())));
        assert_eq!(ok("/focus @bob"), Command::Direct(DirectCommand::Query("bob".into())));
        assert_eq!(ok("/focus #lobby"), room(RoomCommand::Focus("lobby".into())));
        assert_eq!(ok("/mute #lobby"), room(RoomCommand::Mute("#lobby".into())));
        assert_eq!(ok("/unmute bob"), room(RoomCommand::Unmute("#bob".into())));
        assert_eq!(ok("/unmute @bob"), room(RoomCommand::Unmute("@bob".into())));
        assert_eq!(ok("/history"), room(RoomCommand::History(None)));
        assert_eq!(ok("/history 20"), room(RoomCommand::History(Some(20))));
        assert_eq!(ok("/history around 3"), room(RoomCommand::HistoryAround(3)));
        let search = crate::search::SearchLine::parse("deploy* from:alice #ops").unwrap();
        assert_eq!(ok("/search deploy* from:alice #ops"), room(RoomCommand::Search(search)));
        assert_eq!(
            ok("/search more"),
            room(RoomCommand::Search(crate::search::SearchLine { query: None, more: true }))
        );
        assert_eq!(ok("/open 3"), Command::Open { link: 3 });
        assert_eq!(ok("/help /kick"), Command::Help { command: Some("kick".into()) });
        assert_eq!(ok("/STATUS"), Command::Status);
        assert_eq!(ok("/trust 3F2A9C01"), Command::Trust { key: "3f2a9c01".into() });
    }

    #[test]
    fn search_and_history_around_say_what_is_wrong() {
        let said = |line: &str| err(line).to_string();
        assert!(said("/search").contains("at least one word"), "{}", said("/search"));
        assert!(said("/search x #a @b").contains("one #ROOM or one @USER"));
        assert!(said("/history around").contains("which search result"));
        assert!(said("/history around zero").contains("not a positive number"));
        let help = match help_for("search") {
            UiEvent::Info { message } => message,
            other => panic!("{other:?}"),
        };
        assert!(help.contains("examples:") && help.contains("/search deploy* from:alice #ops"), "{help}");
    }

    #[test]
    fn usage_errors_name_the_usage() {
        let e = err("/login");
        assert_eq!(e.code(), ErrorCode::Usage);
        assert!(e.to_string().contains("/login NAME"), "{e}");
        assert_eq!(e.to_string(), "usage: /login NAME: missing NAME");
        assert_eq!(err("/login a b").to_string(), "usage: /login NAME: expects one NAME");
        assert_eq!(err("/nick").to_string(), "usage: /nick NICKNAME: missing NICKNAME");
        assert_eq!(err("/msg bob").to_string(), "usage: /msg USER TEXT: missing TEXT");
        assert_eq!(err("/msg").to_string(), "usage: /msg USER TEXT: missing USER and TEXT");
        assert_eq!(err("/quit now").to_string(), "usage: /quit: takes no arguments");
        assert_eq!(err("/kick").to_string(), "usage: /kick USER [ROOM]: missing USER");
        assert_eq!(err("/help a b").to_string(), "usage: /help [COMMAND]: expects at most one argument");
        assert_eq!(err("/history zero").code(), ErrorCode::Usage);
        assert_eq!(err("/history 0").code(), ErrorCode::Usage);
        assert_eq!(err("/open").code(), ErrorCode::Usage);
        assert_eq!(err("/focus @").code(), ErrorCode::Usage);
        assert_eq!(err("/kick a b c").code(), ErrorCode::Usage);
        assert_eq!(err("/join #").code(), ErrorCode::Usage);
        assert_eq!(err("/trust").code(), ErrorCode::Usage);
        assert_eq!(err("/trust 3f2a9c0").code(), ErrorCode::Usage);
        assert_eq!(err("/trust 3f2a9c0g").code(), ErrorCode::Usage);
        assert_eq!(err(&format!("/trust {}", "a".repeat(65))).code(), ErrorCode::Usage);
    }

    #[test]
    fn unknown_commands_suggest_a_close_one() {
        let e = err("/stauts");
        assert_eq!(e.code(), ErrorCode::InvalidCommand);
        assert_eq!(e.to_string(), "unknown command /stauts (did you mean /status?)");
        let e = err("/xyzzy");
        assert_eq!(e.to_string(), "unknown command /xyzzy");
        let e = err("/");
        assert_eq!(e.code(), ErrorCode::InvalidCommand);
    }

    #[test]
    fn hostile_lines_are_refused() {
        assert_eq!(err(&"a".repeat(100_000)).code(), ErrorCode::TooLong);
        assert_eq!(err("hi\0there").code(), ErrorCode::Usage);
        assert_eq!(err("\x1b[2Jclear").code(), ErrorCode::Usage);
        assert_eq!(ok("tab\tok"), Command::Say("tab\tok".into()));
    }

    #[test]
    fn lookup_by_name_ignores_case_and_slash() {
        assert_eq!(spec("/Kick").map(|s| s.name), Some("kick"));
        assert!(spec("nope").is_none());
    }

    #[test]
    fn the_overview_lists_every_command() {
        let text = help_overview();
        assert!(text.starts_with("Commands (text without a leading / goes to the focused room or user):\n"));
        assert!(text.contains("\n  /kick USER [ROOM]  "), "{text}");
        for spec in COMMANDS {
            assert!(text.contains(&format!("{}  ", spec.usage())), "missing {}", spec.name);
            assert!(text.contains(spec.summary), "missing {}", spec.name);
        }
        assert!(text.ends_with("\n/help COMMAND explains one command."));
    }

    #[test]
    fn help_for_a_command_shows_usage_and_example() {
        let UiEvent::Info { message } = help_for("kick") else { panic!("expected info") };
        assert!(message.starts_with("/kick USER [ROOM]"));
        assert!(message.contains("example: /kick mallory lobby"));
        let UiEvent::Error { code, message, .. } = help_for("kik") else { panic!("expected error") };
        assert_eq!(code, ErrorCode::InvalidCommand);
        assert!(message.contains("did you mean /kick?"), "{message}");
    }
}

mod proptests {
    use proptest::prelude::*;

    use super::super::*;

    /// Characters that exercise the parser: white space of several kinds, slashes, sigils,
    /// control characters, digits and non-ASCII text.
    fn any_char() -> impl Strategy<Value = char> {
        prop_oneof![
            4 => prop::sample::select(vec![' ', '\t', '/', '@', '#', '0', '1', 'a', 'Z', '-', '\r', '\n']),
            2 => any::<char>(),
            1 => prop::sample::select(vec!['\0', '\x1b', '\x7f', '\u{85}', '\u{a0}', '\u{2028}', '\u{3000}']),
            1 => prop::sample::select(vec!['\u{200b}', '\u{feff}']),
            1 => prop::sample::select(vec!['\u{e9}', '\u{1f600}', '\u{202e}', '\u{fffd}']),
        ]
    }

    fn chars() -> impl Strategy<Value = String> {
        prop::collection::vec(any_char(), 0..40).prop_map(|c| c.into_iter().collect::<String>())
    }

    fn any_line() -> impl Strategy<Value = String> {
        let name = prop::sample::select(COMMANDS).prop_map(|c| c.name.to_string());
        prop_oneof![
            chars(),
            (name, chars()).prop_map(|(name, rest)| format!("/{name} {rest}")),
            (prop::sample::select(COMMANDS), chars()).prop_map(|(c, rest)| format!("/{}{rest}", c.name.to_uppercase())),
            chars().prop_map(|rest| format!("/{rest}")),
            (MAX_INPUT_LINE_BYTES - 3..MAX_INPUT_LINE_BYTES + 3, prop::sample::select(vec!["a", "\u{e9}", " ", "/"]))
                .prop_map(|(n, s)| format!("/msg bob {}", s.repeat(n / s.len()))),
            (MAX_INPUT_LINE_BYTES - 3..MAX_INPUT_LINE_BYTES + 3).prop_map(|n| "x".repeat(n)),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn any_line_parses_to_nothing_a_command_or_a_coded_error(line in any_line()) {
            let bare = line.trim_end_matches(['\r', '\n']);
            match parse(&line) {
                Ok(None) => prop_assert!(bare.trim().is_empty()),
                Ok(Some(command)) => {
                    prop_assert!(bare.len() <= MAX_INPUT_LINE_BYTES);
                    prop_assert!(!bare.chars().any(|c| c.is_control() && c != '\t'));
                    if let Command::Say(text) = &command {
                        prop_assert!(!text.trim().is_empty());
                        prop_assert!(!bare.starts_with('/') || bare.starts_with("//"));
                    } else {
                        prop_assert!(spec(bare.split_whitespace().next().unwrap_or("")).is_some());
                    }
                    match &command {
                        Command::Register { user: word }
                        | Command::Login { user: word }
                        | Command::Rename { new: word }
                        | Command::Room(RoomCommand::Create(word) | RoomCommand::Join(word))
                        | Command::Direct(DirectCommand::Query(word)) => {
                            prop_assert!(!word.is_empty() && !word.contains(char::is_whitespace), "{:?}", command);
                        }
                        Command::Direct(DirectCommand::Send { user, text }) => {
                            prop_assert!(!user.is_empty() && !user.contains(char::is_whitespace));
                            prop_assert!(!text.trim().is_empty());
                        }
                        Command::Room(RoomCommand::History(Some(n))) | Command::Open { link: n } => prop_assert!(*n > 0),
                        _ => {}
                    }
                }
                Err(error) => {
                    let code = error.code();
                    prop_assert!(matches!(code, ErrorCode::InvalidCommand | ErrorCode::Usage | ErrorCode::TooLong));
                    prop_assert!(!error.to_string().is_empty());
                    if code == ErrorCode::TooLong {
                        prop_assert!(bare.len() > MAX_INPUT_LINE_BYTES);
                    }
                }
            }
        }

        #[test]
        fn any_text_at_all_parses_without_panicking(line in ".{0,80}") {
            let _ = parse(&line);
        }
    }
}
