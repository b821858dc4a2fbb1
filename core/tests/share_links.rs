//! Share links (`core/src/share.rs`): round trips, sizes, every kind of bad input, and the
//! committed v1 links of `fixtures/links/v1/`, which must open forever.

use std::path::PathBuf;
use std::time::Instant;

use glassbox_core::analysis::patching::{AblationKind, AblationTarget, Component, Direction, Granularity, MetricKind};
use glassbox_core::hash::sha256_hex;
use glassbox_core::share::{self, check, encode, fragment, parse_fragment, MAX_FRAGMENT_BYTES, MAX_INTERVENTIONS, MAX_TEXT_CHARS};
use glassbox_core::{Analysis, BackendChoice, Experiment, Fragment, InterventionSpec, ModelRef, ModelSource, Prompt, ShareError, SpecOp, View, Widget};

fn iv(hook: &str, positions: Option<Vec<usize>>, head: Option<usize>, neuron: Option<usize>, op: SpecOp) -> InterventionSpec {
    InterventionSpec { hook: hook.into(), positions, head, neuron, op }
}

fn hub(repo: &str, file: Option<&str>, quantize: Option<&str>) -> ModelSource {
    ModelSource::Hub { repo: repo.into(), file: file.map(Into::into), revision: "main".into(), quantize: quantize.map(Into::into) }
}

/// A shipped model's inspect view: the most common link.
fn shipped_inspect() -> Experiment {
    let mut e = Experiment::new(ModelRef::shipped("induction-2l"), "xQ7bLm2Rk9pZ vT3nW8cY xQ7bLm2Rk9pZ");
    e.view.tab = Some(View::Attention);
    e.view.layer = Some(1);
    e.view.head = Some(0);
    e
}

/// GPT-2 from the hub, quantized on load, with the hashes of its files.
fn hub_gpt2() -> Experiment {
    let model = ModelRef {
        source: hub("openai-community/gpt2", None, Some("q8_0")),
        sha256: vec![sha256_hex(b"gpt2 config.json"), sha256_hex(b"gpt2 model.safetensors"), sha256_hex(b"gpt2 tokenizer.json")],
    };
    let mut e = Experiment::new(model, "When Mary and John went to the store, John gave a drink to");
    e.view.tab = Some(View::Lens);
    e.view.target = Some(" Mary".into());
    e.view.lens_mid = true;
    e
}

/// An activation patching sweep between a clean and a corrupted prompt.
fn patching() -> Experiment {
    let mut e = hub_gpt2();
    e.corrupted = Some("When Mary and John went to the store, Mary gave a drink to".into());
    e.analysis =
        Analysis::Patch { component: Component::Z, by: Granularity::AllPos, direction: Direction::Noising, metric: MetricKind::LogitDiff, pos: Some(13) };
    e.view = Default::default();
    e.view.tab = Some(View::Patching);
    e.view.target = Some(" Mary".into());
    e.view.distractor = Some(" John".into());
    e
}

/// A mean ablation of two heads over a small dataset.
fn ablation() -> Experiment {
    let mut e = Experiment::new(ModelRef::shipped("induction-2l"), "a b c d a b c");
    e.analysis = Analysis::Ablate {
        target: AblationTarget::Heads { heads: vec![(1, 0), (1, 3)] },
        ablation: AblationKind::Mean,
        metric: MetricKind::Loss,
        dataset: vec!["e f g h e f g".into(), "p q r s p q r".into(), "w x y z w x y".into()],
    };
    e.view.tab = Some(View::Ablation);
    e.backend = BackendChoice::Cpu;
    e
}

/// Interventions of every op on a GGUF model at a URL.
fn interventions() -> Experiment {
    let model =
        ModelRef { source: ModelSource::Url { url: "https://example.org/models/tiny-llama-q4_0.gguf?download=1".into() }, sha256: vec![sha256_hex(b"x")] };
    let mut e = Experiment::new(model, "The capital of France is");
    e.corrupted = Some("The capital of Italy is".into());
    e.interventions = vec![
        iv("blocks.0.attn.hook_z", None, Some(2), None, SpecOp::Zero),
        iv("blocks.1.mlp.hook_post", Some(vec![4]), None, Some(17), SpecOp::Scale(-2.5)),
        iv("blocks.2.hook_resid_pre", Some(vec![0, 1, 2]), None, None, SpecOp::Add(vec![0.25, -1.0, 3.5e-3, 0.0, 1e6, -7.125])),
        iv("blocks.3.hook_resid_post", Some(vec![3]), None, None, SpecOp::PatchFrom(Prompt::Corrupted)),
    ];
    e.view.pos = Some(4);
    e.view.neuron = Some(17);
    e.view.tab = Some(View::Neurons);
    e
}

const XSS_IMG: &str = "<img src=x onerror=alert(1)>";
const XSS_SCRIPT: &str = "\"><script>alert(1)</script>";

/// HTML in every reader-typed string: the codec keeps it as text.
fn xss() -> Experiment {
    let model = ModelRef { source: hub(&format!("{XSS_SCRIPT}/{XSS_IMG}"), Some(&format!("{XSS_IMG}.gguf")), None), sha256: vec![] };
    let mut e = Experiment::new(model, format!("{XSS_IMG} and {XSS_SCRIPT} & ' \\ \u{0} %41 #v1/x &widget=lens"));
    e.corrupted = Some(XSS_SCRIPT.into());
    e.view.target = Some(XSS_IMG.into());
    e.view.distractor = Some(XSS_SCRIPT.into());
    e.interventions.push(iv(XSS_SCRIPT, None, None, None, SpecOp::Zero));
    e
}

/// A reader's own file, and a prompt outside ASCII.
fn local_unicode() -> Experiment {
    let mut e = Experiment::new(ModelRef { source: ModelSource::Local { name: "my model (v2) \u{e9}t\u{e9}.gguf".into() }, sha256: vec![] }, "");
    e.prompt = "caf\u{e9} \u{4e2d}\u{6587} \u{1f642}\n\ttabs and\r\nlines \u{202e}reversed\u{202c} \u{feff}".into();
    e.analysis = Analysis::CorpusScan { layer: 2 };
    e
}

/// The committed fixtures: name, experiment, widget, frozen.
fn cases() -> Vec<(&'static str, Experiment, Option<Widget>, bool)> {
    vec![
        ("shipped-inspect", shipped_inspect(), None, false),
        ("hub-gpt2-sha256", hub_gpt2(), Some(Widget::Predictions), false),
        ("patching-corrupted", patching(), Some(Widget::Patching), true),
        ("ablation-mean-heads", ablation(), None, false),
        ("interventions-url-model", interventions(), Some(Widget::Attention), false),
        ("xss-strings", xss(), Some(Widget::Lens), true),
        ("local-unicode-scan", local_unicode(), Some(Widget::Neurons), false),
    ]
}

fn kind(s: &str) -> &'static str {
    match parse_fragment(s) {
        Ok(_) => "ok",
        Err(e) => e.kind(),
    }
}

fn err(s: &str) -> ShareError {
    parse_fragment(s).expect_err(s)
}

/// `v1/` + base64url of raw bytes (a payload the encoder would never write).
fn link_of_bytes(bytes: &[u8]) -> String {
    use base64::Engine as _;
    format!("v1/{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

fn link_of_json(json: &str) -> String {
    link_of_bytes(&miniz_oxide::deflate::compress_to_vec(json.as_bytes(), 6))
}

#[test]
fn experiments_round_trip_with_their_parameters() {
    let t = Instant::now();
    for (name, e, _, _) in cases() {
        assert_eq!(share::decode(&encode(&e)).unwrap(), e, "{name}");
        check(&e).unwrap_or_else(|err| panic!("{name}: {err}"));
        for widget in std::iter::once(None).chain(Widget::ALL.map(Some)) {
            for frozen in [false, true] {
                let f = fragment(&e, widget, frozen);
                let want = Fragment { experiment: e.clone(), widget, frozen };
                assert_eq!(parse_fragment(&f).unwrap(), want, "{name} {f}");
                // The page's location.hash, a whole URL, a link a mail program wrapped.
                assert_eq!(parse_fragment(&format!("#{f}")).unwrap(), want, "{name}");
                assert_eq!(parse_fragment(&format!("https://glassbox.example/app/?x=1#{f}\n")).unwrap(), want, "{name}");
                let payload_end = encode(&e).len();
                let wrapped: String =
                    f.chars().enumerate().flat_map(|(i, c)| if i > 3 && i < payload_end && i % 60 == 0 { vec!['\n', ' ', c] } else { vec![c] }).collect();
                assert_eq!(parse_fragment(&wrapped).unwrap(), want, "{name}");
                // A URL-safe link: nothing to escape in an href or a chat message.
                assert!(f.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_/&=".contains(&b)), "{f}");
            }
        }
    }
    // Parameters: `static` alone, `static=0`, repeated ones (the last wins), a newer page's
    // parameters ignored, empty ones skipped.
    let link = encode(&shipped_inspect());
    let p = |s: &str| parse_fragment(&format!("{link}{s}")).map(|f| (f.widget, f.frozen));
    assert_eq!(p("&static"), Ok((None, true)));
    assert_eq!(p("&static=0&widget=lens&widget=neurons"), Ok((Some(Widget::Neurons), false)));
    assert_eq!(p("&&theme=dark&static=true&future"), Ok((None, true)));
    assert_eq!("attribution".parse::<Widget>(), Ok(Widget::Attribution));
    assert_eq!(Widget::ALL.map(|w| w.to_string()).join(","), "predictions,attention,neurons,lens,attribution,patching");
    assert_eq!(serde_json::to_string(&Widget::Patching).unwrap(), "\"patching\"");
    println!("round trips: {:.1} ms", t.elapsed().as_secs_f64() * 1e3);
}

#[test]
fn links_are_short() {
    // About 500 characters of prose (compressible like a real prompt, not repeated).
    let prompt = "In the spring of that year the river rose higher than anyone in the village could remember. \
        The miller moved his sacks of grain to the loft, the baker sent her children to their grandmother on the hill, \
        and the old ferryman, who had seen three great floods, sat on his porch and counted the fence posts as they \
        disappeared one by one beneath the brown water. When the rain finally stopped, the whole valley smelled of mud \
        and cut grass, and the ferryman said, to nobody in particular, that the river";
    assert!((480..=520).contains(&prompt.chars().count()), "{}", prompt.chars().count());
    let mut e = hub_gpt2();
    e.prompt = prompt.into();
    e.interventions = vec![
        iv("blocks.9.attn.hook_z", None, Some(6), None, SpecOp::Zero),
        iv("blocks.10.mlp.hook_post", Some(vec![97]), None, Some(2031), SpecOp::Scale(3.0)),
        iv("blocks.4.hook_resid_pre", Some(vec![12, 13]), None, None, SpecOp::PatchFrom(Prompt::Corrupted)),
    ];
    let long = fragment(&e, Some(Widget::Predictions), false);
    let typical = encode(&shipped_inspect());
    let patch = encode(&patching());
    println!(
        "link lengths: 500-char prompt + 3 interventions (GPT-2, 3 hashes): {} chars (JSON {}); shipped-model inspect: {} chars (JSON {}); GPT-2 patching: {} chars",
        long.len(),
        e.to_json().len(),
        typical.len(),
        shipped_inspect().to_json().len(),
        patch.len()
    );
    assert!(long.len() < 2000, "{} characters", long.len());
    assert!(typical.len() < 200, "{} characters", typical.len());
}

/// The committed v1 links. **Never regenerate these files, not for a format change, not for a
/// new compressor:** they are links readers have already shared, and old links must keep
/// opening. The writer below only adds files that are missing (a new case), never overwrites.
/// `GLASSBOX_WRITE_LINK_FIXTURES=1 cargo test -p glassbox-core --test share_links` writes new
/// cases; without it, every file of the folder is checked and a missing case fails.
///
/// Each `<name>.txt`: the fragment on line 1, `expect: widget=<kind|none> frozen=<bool>` on
/// line 2; `<name>.json` next to it: the experiment's expected JSON.
#[test]
fn v1_fixtures_open_forever() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/links/v1");
    if std::env::var("GLASSBOX_WRITE_LINK_FIXTURES").as_deref() == Ok("1") {
        std::fs::create_dir_all(&dir).unwrap();
        for (name, e, widget, frozen) in cases() {
            let (txt, json) = (dir.join(format!("{name}.txt")), dir.join(format!("{name}.json")));
            if txt.exists() || json.exists() {
                continue;
            }
            let w = widget.map_or("none", Widget::name);
            std::fs::write(&txt, format!("{}\nexpect: widget={w} frozen={frozen}\n", fragment(&e, widget, frozen))).unwrap();
            std::fs::write(&json, serde_json::to_string_pretty(&serde_json::from_str::<serde_json::Value>(&e.to_json()).unwrap()).unwrap() + "\n").unwrap();
            println!("wrote {}", txt.display());
        }
    }
    for (name, ..) in cases() {
        assert!(dir.join(format!("{name}.txt")).exists(), "fixture {name} is missing: GLASSBOX_WRITE_LINK_FIXTURES=1 adds it");
    }
    let mut names: Vec<PathBuf> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).filter(|p| p.extension().is_some_and(|x| x == "txt")).collect();
    names.sort();
    for txt in &names {
        let text = std::fs::read_to_string(txt).unwrap();
        let mut lines = text.lines();
        let link = lines.next().unwrap();
        let got = parse_fragment(link).unwrap_or_else(|e| panic!("{}: {e}", txt.display()));
        let want = Experiment::from_json(&std::fs::read_to_string(txt.with_extension("json")).unwrap()).unwrap();
        assert_eq!(got.experiment, want, "{}", txt.display());
        let expect = lines.next().and_then(|l| l.strip_prefix("expect: ")).unwrap_or_else(|| panic!("{}: no expect line", txt.display()));
        let w = got.widget.map_or("none", Widget::name);
        assert_eq!(expect, format!("widget={w} frozen={}", got.frozen), "{}", txt.display());
    }
    assert!(names.len() >= 5, "only {} fixtures in {}", names.len(), dir.display());
}

#[test]
fn bad_links_say_what_is_wrong_and_never_panic() {
    let t = Instant::now();
    // No link, no prefix, no payload, a format from the future.
    for s in ["", "#", "  \n", "https://glassbox.example/#"] {
        assert_eq!(err(s), ShareError::Empty, "{s:?}");
    }
    for s in ["hello", "vacation", "v/abc", "v1abc", "1/abc", "V1/abc", "&widget=lens"] {
        assert_eq!(err(s), ShareError::NoPrefix, "{s:?}");
    }
    assert_eq!(err("v1/"), ShareError::MissingPayload);
    assert_eq!(err("v1"), ShareError::MissingPayload);
    assert_eq!(err("v1/&widget=lens"), ShareError::MissingPayload);
    let e = err("v9/abc");
    assert_eq!(e, ShareError::UnknownFormat { version: 9 });
    assert!(e.to_string().contains("newer glassbox (v9)"), "{e}");
    assert!(err("v7/").to_string().contains("newer glassbox (v7)"));
    assert!(err("v0/abc").to_string().contains("does not exist"));
    assert_eq!(err("v99999999999999999999999/x"), ShareError::UnknownFormat { version: u64::MAX });
    assert_eq!(err(&format!("v1/{}", "A".repeat(MAX_FRAGMENT_BYTES))).kind(), "too_large");

    // A valid link cut in half, and at every length: cut off, never an experiment.
    let link = fragment(&patching(), None, false);
    let half = &link[..link.len() / 2];
    let e = err(half);
    assert!(matches!(e, ShareError::Truncated | ShareError::BadBase64 { .. }), "{e:?}");
    assert!(e.to_string().contains("cut off"), "{e}");
    for n in 3..link.len() {
        let k = kind(&link[..n]);
        assert!(["missing_payload", "truncated", "bad_base64"].contains(&k), "cut at {n}: {k}");
    }
    // Characters no link has; any character of the alphabet swapped anywhere (no checksum:
    // some still decode, to a different experiment or not at all, none panics).
    for c in ['!', '+', '.', '%', '=', '\u{e9}'] {
        let mut s: Vec<char> = link.chars().collect();
        s[link.len() / 3] = c;
        let e = err(&s.iter().collect::<String>());
        assert_eq!(e.kind(), "bad_base64", "{c}: {e}");
        assert!(e.to_string().contains(&format!("character {c:?}")), "{e}");
    }
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut kinds = std::collections::BTreeMap::<&str, usize>::new();
    for at in 3..link.len() {
        for &c in alphabet.iter().step_by(7) {
            let mut s = link.clone().into_bytes();
            s[at] = c;
            *kinds.entry(kind(std::str::from_utf8(&s).unwrap())).or_default() += 1;
        }
    }
    println!("one character swapped: {kinds:?}");

    // Valid base64 of garbage: not DEFLATE (block type 3 does not exist).
    assert_eq!(err(&link_of_bytes(&[0xff, 0x13, 0x37, 0x00, 0x42])).kind(), "not_deflate");
    // Valid DEFLATE of something else.
    let e = err(&link_of_json("hello, not JSON"));
    assert_eq!(e.kind(), "not_experiment");
    assert!(e.to_string().contains("expected value"), "{e}");
    assert_eq!(err(&link_of_bytes(&miniz_oxide::deflate::compress_to_vec(&[0xc3, 0x28, 0xff], 6))).kind(), "not_experiment");
    let e = err(&link_of_json(r#"{"v":1,"prompt":"x"}"#));
    assert!(matches!(&e, ShareError::NotExperiment { detail } if detail.contains("model")), "{e}");
    assert_eq!(err(&link_of_json("[1, 2, 3]")).kind(), "not_experiment");
    // An experiment from the future.
    let future = shipped_inspect().to_json().replace("\"v\":1", "\"v\":99");
    let e = err(&link_of_json(&future));
    assert_eq!(e, ShareError::FutureExperiment { v: 99 });
    assert!(e.to_string().contains("version 99"), "{e}");
    assert_eq!(err(&link_of_json(&shipped_inspect().to_json().replace("\"v\":1", "\"v\":0"))).kind(), "not_experiment");
    // A DEFLATE bomb: 10 MB of zeros, about 10 kB compressed. Inflating stops at the limit.
    let bomb = link_of_bytes(&miniz_oxide::deflate::compress_to_vec(&vec![0u8; 10 << 20], 10));
    assert!(bomb.len() < MAX_FRAGMENT_BYTES, "{}", bomb.len());
    let tb = Instant::now();
    assert_eq!(err(&bomb), ShareError::InflateLimit { max: share::MAX_JSON_BYTES });
    println!("the bomb ({} chars) is refused in {:.2} ms", bomb.len(), tb.elapsed().as_secs_f64() * 1e3);

    // Over-long fields, too many interventions, deep nesting, numbers an f32 cannot hold.
    let mut e = shipped_inspect();
    e.prompt = "x".repeat(MAX_TEXT_CHARS + 1);
    let got = err(&encode(&e));
    assert!(matches!(&got, ShareError::TooLong { field, len, .. } if field == "prompt" && *len == MAX_TEXT_CHARS + 1), "{got:?}");
    assert_eq!(check(&e), Err(got));
    e.prompt = "\u{e9}".repeat(MAX_TEXT_CHARS); // 20,000 characters, 40,000 bytes: fine
    assert_eq!(share::decode(&encode(&e)).unwrap(), e);
    let mut e = patching();
    e.corrupted = Some("y".repeat(MAX_TEXT_CHARS + 5));
    assert!(matches!(err(&encode(&e)), ShareError::TooLong { field, .. } if field == "corrupted"));
    let mut e = shipped_inspect();
    e.model.source = hub(&"r".repeat(3000), None, None);
    assert!(matches!(err(&encode(&e)), ShareError::TooLong { field, .. } if field == "model.source.repo"));
    let mut e = shipped_inspect();
    e.interventions = (0..=MAX_INTERVENTIONS).map(|l| iv(&format!("blocks.{l}.hook_resid_pre"), None, None, None, SpecOp::Zero)).collect();
    let got = err(&encode(&e));
    assert!(matches!(&got, ShareError::TooLong { field, len: 65, max: 64, .. } if field == "interventions"), "{got:?}");
    e.interventions.truncate(MAX_INTERVENTIONS);
    assert_eq!(share::decode(&encode(&e)).unwrap(), e);
    let mut e = shipped_inspect();
    e.interventions = vec![iv("blocks.0.hook_resid_pre", None, None, None, SpecOp::Add(vec![0.5; share::MAX_LIST_LEN + 1]))];
    let got = err(&encode(&e));
    assert!(matches!(&got, ShareError::TooLong { field, .. } if field == "interventions[0].op.add"), "{got:?}");
    let deep = shipped_inspect().to_json().replacen('{', &format!("{{\"extra\":{}0{},", "[".repeat(40), "]".repeat(40)), 1);
    assert_eq!(err(&link_of_json(&deep)).kind(), "too_deep");
    let huge = interventions().to_json().replace("-2.5", "1e39");
    let got = err(&link_of_json(&huge));
    assert!(matches!(&got, ShareError::BadValue { field, .. } if field == "interventions[1].op.scale"), "{got:?}");
    // A NaN steering coefficient cannot be written as JSON: check() says so before sharing.
    let mut e = shipped_inspect();
    e.interventions = vec![iv("blocks.0.hook_resid_pre", None, None, None, SpecOp::Scale(f32::NAN))];
    assert_eq!(check(&e).unwrap_err().kind(), "not_experiment");

    // Parameters.
    let ok = encode(&shipped_inspect());
    let e = err(&format!("{ok}&widget=sankey"));
    assert_eq!(e, ShareError::UnknownWidget { kind: "sankey".into() });
    assert!(e.to_string().contains("\"sankey\"") && e.to_string().contains("attention"), "{e}");
    assert_eq!(err(&format!("{ok}&widget=")).kind(), "unknown_widget");
    assert_eq!(err(&format!("{ok}&static=maybe")).kind(), "bad_parameter");
    let e = err(&format!("{ok}&widget={}", "w".repeat(10_000)));
    assert!(e.to_string().len() < 200, "{e}");
    println!("bad links: {:.1} ms", t.elapsed().as_secs_f64() * 1e3);
}

#[test]
fn html_in_strings_round_trips_byte_exact() {
    let e = xss();
    let f = fragment(&e, Some(Widget::Attribution), true);
    assert!(!f.contains(['<', '>', '"', '\'', ' ', '\\']), "{f}");
    let back = parse_fragment(&f).unwrap().experiment;
    assert_eq!(back, e);
    assert!(back.prompt.starts_with(XSS_IMG) && back.prompt.contains(XSS_SCRIPT), "{}", back.prompt);
    assert_eq!(back.view.target.as_deref(), Some(XSS_IMG));
    assert_eq!(back.view.distractor.as_deref(), Some(XSS_SCRIPT));
    assert_eq!(back.corrupted.as_deref(), Some(XSS_SCRIPT));
    match &back.model.source {
        ModelSource::Hub { repo, file, .. } => {
            assert_eq!(repo.as_bytes(), format!("{XSS_SCRIPT}/{XSS_IMG}").as_bytes());
            assert_eq!(file.as_deref(), Some(format!("{XSS_IMG}.gguf").as_str()));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(back.interventions[0].hook, XSS_SCRIPT);
}

#[test]
fn sha256_of_model_files() {
    assert_eq!(sha256_hex(b""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    assert_eq!(sha256_hex(b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    let big = vec![7u8; 1 << 20];
    let h = sha256_hex(&big);
    assert_eq!((h.len(), h.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())), (64, true));
    assert_ne!(h, sha256_hex(&big[1..]));
}
