import PipelineGraph

extension StageRegistry {
    /// Every stage type GANFlow ships. Adding a stage adds one line here.
    public static let standard = StageRegistry([
        NormalNoiseStage.self,
        DCGANGeneratorStage.self,
        DCGANDiscriminatorStage.self,
        AdversarialLossStage<NonSaturatingLoss>.self,
        AdversarialLossStage<MinimaxLoss>.self,
        AdversarialLossStage<LeastSquaresLoss>.self,
        AdversarialLossStage<HingeLoss>.self,
        OptimizerStage<AdamRecipe>.self,
        IDXDatasetStage.self,
        ImageFolderDatasetStage.self,
        GridSinkStage.self,
        ImagesSinkStage.self,
        ImageLoadStage.self,
        ImageParameterStage.self,
        VGGFeaturesStage.self,
        RandomFeaturesStage.self,
        ContentLossStage.self,
        StyleLossStage.self,
        TotalVariationLossStage.self,
        WeightedSumLossStage.self,
        LBFGSOptimizerStage.self,
        ImageSinkStage.self,
    ])
}
