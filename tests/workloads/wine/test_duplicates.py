import numpy as np
import pandas as pd

from reprolab.workloads.wine import duplicates
from reprolab.workloads.wine.data import FILES, INPUTS, TARGET


def test_kept_duplicates_score_better_than_the_rows_without_a_twin(tmp_path):
    rng = np.random.default_rng(0)
    for colour in ("red", "white"):
        frame = pd.DataFrame(rng.uniform(0, 10, (40, len(INPUTS))).round(2), columns=INPUTS)
        frame[TARGET] = rng.integers(3, 9, 40)  # grades unrelated to the inputs
        frame = pd.concat([frame, frame.head(20)])  # 20 wines listed twice
        frame.to_csv(tmp_path / FILES[colour].name, sep=";", index=False)
    rows = {name.strip(): (n, m) for name, n, m in duplicates.measure(tmp_path)}
    assert rows["duplicates kept"][0] == 120 and rows["deduplicated"][0] == 80
    assert rows["rows with a twin"][0] == 80 and rows["rows without"][0] == 40
    # noise grades: only a twin in the training folds gives the answer away
    assert rows["rows with a twin"][1]["acc_0_5"] > rows["rows without"][1]["acc_0_5"] + 0.1
