"""Named dataset lists of ../shared/datasets/pmlb used by the benchmarks.

Chosen to vary in size (50 to 58,000 rows), width (2 to 1,000 features), number
of classes, share of categorical features, and difficulty (including synthetic
interaction problems where default models stumble).
"""

ENGINE_CLASSIFICATION = [
    "analcatdata_creditscore",  # 100 x 6
    "hepatitis",  # 155 x 19, mostly categorical
    "wine_recognition",  # 178 x 13, 3 classes
    "spectf",  # 349 x 44
    "vote",  # 435 x 16 categorical
    "soybean",  # 675 x 35 categorical, 18 classes
    "tokyo1",  # 959 x 44
    "Hill_Valley_with_noise",  # 1,212 x 100, where trees struggle
    "mfeat_fourier",  # 2,000 x 76, 10 classes
    "adult",  # 48,842 x 14, mixed types
]
ENGINE_REGRESSION = [
    "1096_FacultySalaries",  # 50 x 4
    "230_machine_cpu",  # 209 x 6
    "505_tecator",  # 240 x 124
    "519_vinnie",  # 380 x 2
    "1027_ESL",  # 488 x 4, few distinct target values
    "616_fri_c4_500_50",  # 500 x 50, synthetic with noise features
    "1030_ERA",  # 1,000 x 4
    "4544_GeographicalOriginalofMusic",  # 1,059 x 117
    "1199_BNG_echoMonths",  # 17,496 x 9
    "564_fried",  # 40,768 x 10
]
ENGINE = ENGINE_CLASSIFICATION + ENGINE_REGRESSION  # issue 2: the engine against simple baselines

PEERS_CLASSIFICATION = ENGINE_CLASSIFICATION + [
    "breast_cancer",  # 286 x 9 categorical
    "cmc",  # 1,473 x 9, 3 classes
    "GAMETES_Epistasis_2_Way_20atts_0.4H_EDM_1_1",  # 1,600 x 20, pure interaction
    "ring",  # 7,400 x 20
    "shuttle",  # 58,000 x 9, 7 very unbalanced classes
]
PEERS_REGRESSION = ENGINE_REGRESSION + [
    "229_pwLinear",  # 200 x 10
    "690_visualizing_galaxy",  # 323 x 4
    "588_fri_c4_1000_100",  # 1,000 x 100
    "1193_BNG_lowbwt",  # 31,104 x 9
    "215_2dplanes",  # 40,768 x 10
]
PEERS = PEERS_CLASSIFICATION + PEERS_REGRESSION  # issue 3 (and the held-out set of issue 5)

_SERIES_CLASSIFICATION = [
    "breast_w", "monk2", "allhyper", "led24", "saheart", "mofn_3_7_10", "analcatdata_authorship", "ecoli",
    "hypothyroid", "xd6",
]
_SERIES_REGRESSION = [
    "581_fri_c3_500_25", "595_fri_c0_1000_10", "1029_LEV", "557_analcatdata_apnea1", "604_fri_c4_500_10",
    "612_fri_c1_1000_5", "627_fri_c2_500_10", "633_fri_c0_500_25", "608_fri_c3_1000_10", "649_fri_c0_500_5",
]
# Issue 5's learning-across-tasks sequence: 20 mid-sized datasets, none of PEERS, alternating task kinds,
# with families of related tasks (Friedman functions, thyroid records) as a user's series would have.
SERIES = [name for pair in zip(_SERIES_CLASSIFICATION, _SERIES_REGRESSION) for name in pair]

# Where ideas are tried before they reach a reported benchmark (issue 16): 25 corpus datasets outside PEERS and
# SERIES, of every task kind, from 47 to 40,768 rows and 2 to 168 features.
VALIDATION = [
    "labor", "heart_statlog", "colic", "clean1", "profb", "flare", "dis", "coil2000",
    "GAMETES_Heterogeneity_20atts_1600_Het_0.4_0.2_50_EDM_2_001",
    "tae", "auto", "cleveland", "movement_libras", "analcatdata_dmft", "mfeat_zernike", "led7", "waveform_21",
    "page_blocks",
    "1089_USCrime", "228_elusage", "561_cpu", "695_chatfield_4", "644_fri_c4_250_25", "556_analcatdata_apnea2",
    "607_fri_c4_1000_50", "344_mv",
]

LISTS = {"engine": ENGINE, "peers": PEERS, "peers_classification": PEERS_CLASSIFICATION, "series": SERIES,
         "validation": VALIDATION}
