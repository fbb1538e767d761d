"""Distribution of built variants: the INFO registry (``info``), downloading and verifying
(``fetch``), preparing an upload folder (``publish``) and the dataset cards (``cards``)."""
