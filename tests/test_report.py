"""report.md is complete: every local file it links exists, and it has the seven parts."""

import glob
import os
import re
import subprocess
import sys

import pytest
from conftest import ROOT

REPORT = os.path.join(ROOT, "report.md")
TEMPLATE = os.path.join(ROOT, "bench", "report_template.md")

# The seven parts of issue 6, in order.
PARTS = ["Method", "Results on every image", "GMM against k-means", "Video", "Speed",
         "Questions", "Limits"]
QUESTIONS = ["strengths", "weaknesses", "good candidate"]

# ![alt](target) and [text](target), with an optional "title"; a target with
# spaces is written <like this>.
LINK = re.compile(r'!?\[[^\]]*\]\(\s*(?:<([^>]+)>|([^)\s]+))(?:\s+"[^"]*")?\s*\)')


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def local_links(text):
    """Targets of Markdown links and images that are files in the repository."""
    targets = []
    for bracketed, bare in LINK.findall(text):
        target = bracketed or bare
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE) or target.startswith("#"):
            continue  # a URL or an anchor
        targets.append(target.split("#")[0])
    return targets


def test_link_pattern_finds_images_and_links():
    text = "![a](results/x.png) and [b](docs/y.md#part) and [c](https://e.org) ![d](<z w.gif>)"
    assert local_links(text) == ["results/x.png", "docs/y.md", "z w.gif"]


@pytest.mark.parametrize("path", [REPORT, os.path.join(ROOT, "README.md"),
                                  *sorted(glob.glob(os.path.join(ROOT, "docs", "*.md")))])
def test_every_linked_file_exists(path):
    targets = local_links(read(path))
    if path in (REPORT, os.path.join(ROOT, "README.md")):
        assert targets, f"{path} links no local file"
    missing = [t for t in targets
               if not os.path.isfile(os.path.join(os.path.dirname(path), t))]
    assert not missing, f"{os.path.basename(path)} links missing files: {missing}"


def test_report_shows_a_sweep_for_every_image():
    images = [name for name in os.listdir(os.path.join(ROOT, "images"))
              if not name.endswith(".md")]
    linked = set(local_links(read(REPORT)))
    for name in images:
        assert f"results/{os.path.splitext(name)[0]}_sweep_k2-6.png" in linked, name


def test_report_has_the_seven_parts_in_order():
    headings = re.findall(r"^## (\d+)\. (.+)$", read(REPORT), re.MULTILINE)
    assert [int(number) for number, _ in headings] == list(range(1, 8))
    for (_, title), part in zip(headings, PARTS, strict=True):
        assert title.startswith(part), (title, part)


def test_each_question_has_an_answer():
    section = re.search(r"^## 6\..*?(?=^## 7\.)", read(REPORT), re.MULTILINE | re.DOTALL)
    questions = re.split(r"^### 6\.\d ", section.group(0), flags=re.MULTILINE)[1:]
    assert len(questions) == len(QUESTIONS)
    for answer, keyword in zip(questions, QUESTIONS, strict=True):
        heading, _, body = answer.partition("\n")
        assert keyword in heading
        assert len(body.split()) > 100, f"answer to '{heading}' is too short"


def test_report_is_filled():
    # Every {{slot}} of the template was replaced by make_report.py.
    assert "{{" not in read(REPORT)
    assert re.search(r"\{\{\w+\}\}", read(TEMPLATE))


def test_results_holds_only_what_is_linked():
    # results/ is committed: nothing stale beside what report.md and README show.
    linked = set(local_links(read(REPORT))) | set(local_links(read(os.path.join(ROOT,
                                                                             "README.md"))))
    tracked = subprocess.run(["git", "ls-files", "results"], cwd=ROOT, capture_output=True,
                             text=True, check=False)
    if tracked.returncode != 0:
        pytest.skip("not a git checkout")
    files = set(tracked.stdout.split())
    assert files - linked == set()


def test_synthetic_cases_show_what_the_report_says():
    # Section 3's two cases: the GMM clearly beats k-means on elongated Gaussian
    # clusters, and is no better than chance on a ring around a blob.
    import numpy as np
    from sklearn.metrics import adjusted_rand_score

    sys.path.insert(0, os.path.join(ROOT, "bench"))
    import make_report

    rng = np.random.default_rng(make_report.SEED)
    x, truth, true_model = make_report.elongated_clusters(rng)
    kmeans_labels, _, gmm_labels, _ = make_report.fit_both(x, 3)
    gmm, kmeans = adjusted_rand_score(truth, gmm_labels), adjusted_rand_score(truth,
                                                                              kmeans_labels)
    assert gmm > 0.8 and gmm > kmeans + 0.5
    bayes = adjusted_rand_score(truth, true_model.inference(x)[0].argmax(axis=1))
    assert abs(gmm - bayes) < 0.05  # the fit is as good as the true mixture
    x, truth, _ = make_report.ring_around_blob(rng)
    _, _, gmm_labels, _ = make_report.fit_both(x, 2)
    assert adjusted_rand_score(truth, gmm_labels) < 0.1


def test_match_to_truth_renumbers_a_permutation():
    import numpy as np

    sys.path.insert(0, os.path.join(ROOT, "bench"))
    import make_report

    truth = np.array([0, 0, 1, 1, 2, 2])
    shown, mapping = make_report.match_to_truth(truth, np.array([2, 2, 0, 0, 1, 1]))
    np.testing.assert_array_equal(shown, truth)
    np.testing.assert_array_equal(mapping, [1, 2, 0])
