"""`jaxsuite report`: rows from committed results (missing, current, stale), re-derived statistics for older
results, the method pages, and the README's methods table generated from results/ (this test fails when the
README's table differs from what the committed results give: run `jaxsuite report --readme`)."""
import json

from jaxsuite import cli
from jaxsuite.core import provenance, registry, report, results
from tests.conftest import REPO


def payload(method="nddr", **kw):
    base = {"method": method, "preset": "quick", "dataset": "multi_digits", "primary_metric": "mean_accuracy",
            "higher_is_better": True, "reference": method, "seeds": [0, 1, 2],
            "variants": {method: {"mean_accuracy": [0.9, 0.91, 0.92], "train_seconds": [1, 1, 1]},
                         "single_task": {"mean_accuracy": [0.8, 0.82, 0.81], "train_seconds": [1, 1, 1]}},
            "extra": {}, "config": {}, "overrides": [], "git_commit": "a" * 40, "jax_version": "0.10.2",
            "devices": "cpu x1", "wall_seconds": 10.0}
    return {**base, **kw}


def test_readme_methods_table_is_generated_from_the_committed_results():
    text = (REPO / "README.md").read_text()
    section = report.readme_section(text)
    assert section is not None, "README.md lacks the methods-table markers"
    assert section == report.readme_table(REPO / "results"), (
        "README's methods table differs from the committed results: run `jaxsuite report --readme`")


def test_every_method_has_a_row_and_missing_results_say_so(tmp_path):
    rows = [report.summary(m, p) for m, p in report.load(tmp_path).items()]
    assert [r["method"] for r in rows] == sorted(registry.METHODS)
    assert all(r["status"] == "missing" and not r["has_results"] for r in rows)
    table = report.readme_table(tmp_path)
    assert table.count("no committed results") == len(registry.METHODS)


def test_current_and_stale_rows(tmp_path):
    results.write(payload(fingerprint=provenance.fingerprint("nddr"), machine={"cpu": "CPU X"}), tmp_path / "nddr")
    stale = payload("exgrg", fingerprint={"digest": "0", "files": {"jaxsuite/core/loop.py": "0"}})
    results.write(stale, tmp_path / "exgrg")
    rows = {r["method"]: r for r in (report.summary(m, p) for m, p in report.load(tmp_path).items())}
    assert rows["nddr"]["status_text"] == "current" and rows["nddr"]["cpu"] == "CPU X"
    assert rows["exgrg"]["status_text"].startswith(f"stale: produced by {'a' * 12}")
    assert rows["exgrg"]["reference_value"] == "0.9100 ± 0.0100"  # a stale result stays shown
    other = rows["nddr"]["others"][0]
    assert other["variant"] == "single_task" and other["verdict"] == "ahead" and other["interval"].startswith("Δ 0.1000 [")
    table = report.readme_table(tmp_path)
    assert "**nddr 0.9100 ± 0.0100** vs single_task 0.8100 ± 0.0100 (Δ 0.1000 [" in table
    assert "stale: produced by" in table and table.count("no committed results") == len(registry.METHODS) - 2


def test_results_without_paired_stats_or_fingerprint_are_re_derived(tmp_path):
    old = payload()  # as written before this issue: no paired, no fingerprint, machine or command
    (tmp_path / "nddr").mkdir()
    (tmp_path / "nddr" / "results.json").write_text(json.dumps(old))
    row = report.summary("nddr", report.load(tmp_path)["nddr"])
    assert row["others"][0]["verdict"] == "ahead"
    assert row["status"] == "stale" and "not in this repository" in row["status_text"]
    assert row["command"].startswith("jaxsuite reproduce nddr --preset quick --seeds 0,1,2")
    assert "CPU not recorded" in row["cpu"]


def test_results_md_and_json_carry_the_paired_statistics(tmp_path):
    paths = results.write(payload(), tmp_path / "nddr")
    saved = json.loads(paths["json"].read_text())
    assert saved["paired"]["single_task"]["verdict"] == "ahead" and len(saved["paired"]["single_task"]["diffs"]) == 3
    md = paths["md"].read_text()
    assert "| single_task | +0.1000 [" in md and "| ahead |" in md


def test_report_cli_writes_the_site_and_the_readme_table(tmp_path, capsys):
    results.write(payload(fingerprint=provenance.fingerprint("nddr")), tmp_path / "results" / "nddr")
    assert cli.main(["report", "--results", str(tmp_path / "results"), "--out", str(tmp_path / "site")]) == 0
    index = (tmp_path / "site" / "index.html").read_text()
    assert index.count('class="method-row"') == len(registry.METHODS) and "http" not in index.replace(
        "https://", "").split("<style>")[0]
    page = (tmp_path / "site" / "nddr.html").read_text()
    assert 'src="nddr/mean_accuracy.png"' in page and (tmp_path / "site" / "nddr" / "mean_accuracy.png").is_file()
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{report.START}\nold\n{report.END}\nrest\n")
    assert cli.main(["report", "--readme", "--readme-path", str(readme), "--results", str(tmp_path / "results")]) == 0
    text = readme.read_text()
    assert text.startswith("intro\n") and text.endswith("rest\n") and "**nddr 0.9100" in text
    assert report.readme_section(text) == report.readme_table(tmp_path / "results")
    assert "updated" in capsys.readouterr().out
