/// The recommended settings of each adaptation task: what `train` uses for every setting the user does not
/// give on the command line. They come from the measurements in RESULTS.md; a task not listed gets the
/// general recipe. `--source-only` runs use the same recipe without the domain term, so the two compare.
public enum Recipes {
    /// The full config `train --source s --target t` starts from before its flags are applied.
    public static func recommended(source: DatasetName, target: DatasetName) -> TrainingConfig {
        var c = TrainingConfig()
        c.source = source
        c.target = target
        // Every task: the batch-normalised small network with per-domain statistics and channel dropout,
        // the paper's SGD schedules (lr 0.01 annealed, momentum 0.9, λ rising to 1), 128 + 128 per step.
        c.arch = Architecture.smallBN.name
        c.epochs = 15
        switch (source, target) {
        case (.svhn, .mnist):
            // The bundled SVHN sample has 1,083 images (8 steps an epoch): many passes over it.
            c.epochs = 100
        default:
            break
        }
        return c
    }
}
