"""What `vocoder.evaluate` pairs: folders, one file, and lists in both of the package's list syntaxes."""

from pathlib import Path

from vocoder.evaluation.pairing import audio_files


def touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


def test_txt_and_lst_lists_name_their_files_relative_to_the_list(tmp_path):
    a, b = touch(tmp_path / "spk" / "a.wav"), touch(tmp_path / "spk" / "b #2.wav")
    (tmp_path / "refs.txt").write_text("spk/a.wav|some text\n# a comment\n\"spk/b #2.wav\"\n")
    (tmp_path / "refs.lst").write_text("spk/a.wav\nspk/b #2.wav\n")  # literal: '#' is part of the name
    for name in ("refs.txt", "refs.lst"):
        files, root = audio_files(tmp_path / name, "reference")
        assert [f.resolve() for f in files] == [a.resolve(), b.resolve()] and root == tmp_path, name


def test_one_file_is_itself(tmp_path):
    wav = touch(tmp_path / "x.wav")
    assert audio_files(wav, "generated") == ([wav], tmp_path)
