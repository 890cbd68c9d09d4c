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
        CIFARDatasetStage.self,
        PyramidStage.self,
        GridSinkStage.self,
        ImagesSinkStage.self,
        DiffAugmentStage.self,
        AdaptiveAugmentStage.self,
        MLPGeneratorStage.self,
        MLPDiscriminatorStage.self,
        AdversarialLossStage<RelativisticAverageLoss>.self,
        AdversarialLossStage<RelativisticHingeLoss>.self,
        AdversarialLossStage<WassersteinLoss>.self,
        AdversarialLossStage<WGANGPLoss>.self,
        OptimizerStage<AdamWRecipe>.self,
        OptimizerStage<SGDRecipe>.self,
        OptimizerStage<RMSpropRecipe>.self,
        ProgressiveScheduleStage.self,
        ProGANGeneratorStage.self,
        ProGANDiscriminatorStage.self,
        FadeStage.self,
        MSGGeneratorStage.self,
        MSGDiscriminatorStage.self,
        PyramidGridSinkStage.self,
    ])
}
