// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Ownable, Ownable2Step} from "@openzeppelin/contracts/access/Ownable2Step.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";
import {IModelRegistry} from "./interfaces/IModelRegistry.sol";

/// @title ModelRegistry: who owns each model, what a call costs, and which file each version is
/// @notice Anyone may register a model. Its owner sets the price per call, publishes versions
/// (each the sha-256 digest of an ONNX file), chooses co-authors who share the revenue, and can
/// switch the model off. The contract owner can only pause new registrations.
/// Terms that bind calls already paid for change only with notice: a price rise binds signed
/// receipts (the escrow's off-chain calls) only after `priceNoticePeriod`, and a change of
/// explicit payees applies `priceNoticePeriod` after it is made.
contract ModelRegistry is IModelRegistry, Ownable2Step, Pausable {
    // ------------------------------------------------------------------ errors

    error ModelRegistry_UnknownModel(uint256 modelId);
    error ModelRegistry_UnknownVersion(uint256 modelId, uint32 version);
    error ModelRegistry_NotModelOwner(uint256 modelId, address account);
    error ModelRegistry_EmptyName();
    error ModelRegistry_ZeroDigest();
    error ModelRegistry_PriceTooHigh(uint256 pricePerCall, uint256 maxPricePerCall);
    error ModelRegistry_ZeroAddress();
    error ModelRegistry_PayeeCount(uint256 count, uint256 maxCount);
    error ModelRegistry_LengthMismatch(uint256 accounts, uint256 shares);
    error ModelRegistry_ZeroShare(address account);
    error ModelRegistry_DuplicatePayee(address account);
    error ModelRegistry_SharesTotal(uint256 total, uint256 required);

    // ------------------------------------------------------------------ events

    event ModelRegistered(
        uint256 indexed modelId,
        address indexed owner,
        string name,
        bytes32 artifactDigest,
        uint256 pricePerCall,
        string metadataURI
    );
    event VersionPublished(uint256 indexed modelId, uint32 version, bytes32 artifactDigest, string metadataURI);
    event PriceChanged(uint256 indexed modelId, uint256 oldPrice, uint256 newPrice);
    event PayeesChanged(uint256 indexed modelId, address[] accounts, uint16[] shares);
    event ModelActiveChanged(uint256 indexed modelId, bool active);
    event ModelTransferred(uint256 indexed modelId, address indexed from, address indexed to);
    /// @notice A price rise: receipts paying at least `receiptPrice` per call settle until `noticeEndsAt`.
    event PriceNoticeStarted(uint256 indexed modelId, uint256 receiptPrice, uint64 noticeEndsAt);
    /// @notice The payees of the last `PayeesChanged` apply from `effectiveAt` on.
    event PayeesEffectiveAt(uint256 indexed modelId, uint64 effectiveAt);

    // ------------------------------------------------------------------ storage

    /// @notice Shares are basis points of the payees' part of a fee.
    uint16 public constant TOTAL_SHARES = 10_000;
    /// @notice At most this many payees per model, so that settling a call stays bounded.
    uint256 public constant MAX_PAYEES = 8;
    /// @notice Prices are stored in 128 bits; no token supply comes near this.
    uint256 public constant MAX_PRICE = type(uint128).max;

    struct Model {
        // Slot 0 holds everything a new call reads, so `callTerms` costs one storage read.
        uint128 pricePerCall;
        uint32 latestVersion;
        bool active;
        uint8 payeeCount; // payees in force; 0 = the default payee: whoever owns the model
        // Explicit payees live in two banks: `payeeBank` holds those in force; a change is
        // written to the other bank and takes over at `nextPayeesAt` (0: no change pending).
        uint8 payeeBank;
        uint8 nextPayeeCount;
        uint40 nextPayeesAt;
        // Slot 1 onwards
        address owner;
        string name;
        string metadataURI; // of the latest version
    }

    /// @dev The last price rise: until `endsAt`, receipts may pay `receiptPrice` per call (or the
    /// price, if lower). Kept after it ends, so the escrow can tell which channels it covered.
    struct PriceNotice {
        uint128 receiptPrice;
        uint40 endsAt;
        // The lowest receipt price the model ever had, plus one (0: never changed, so the price
        // itself). A channel that settled before the last notice ended may settle once more at
        // it: whatever it was signed at, that settlement can never be underpriced.
        uint136 lowestPlusOne;
    }

    struct Payee {
        address account;
        uint16 share;
    }

    struct Version {
        bytes32 artifactDigest;
        uint64 publishedAt;
    }

    /// @notice Seconds after a price rise during which receipts at the former price still settle.
    uint64 public immutable priceNoticePeriod;

    /// @notice Number of models registered; ids run from 1 to `modelCount`.
    uint256 public modelCount;

    mapping(uint256 modelId => Model) private _models;
    mapping(uint256 modelId => mapping(uint32 version => Version)) private _versions;
    mapping(uint256 modelId => PriceNotice) private _notices;
    // Written through a storage pointer in setPayees, which Slither does not follow.
    // slither-disable-next-line uninitialized-state
    mapping(uint256 modelId => Payee[MAX_PAYEES][2]) private _payees;

    // ------------------------------------------------------------------ modifiers

    modifier onlyModelOwner(uint256 modelId) {
        address owner_ = _existing(modelId).owner;
        if (msg.sender != owner_) revert ModelRegistry_NotModelOwner(modelId, msg.sender);
        _;
    }

    // ------------------------------------------------------------------ constructor

    /// @param priceNoticePeriod_ Seconds a price rise waits before it binds signed receipts.
    constructor(uint64 priceNoticePeriod_) Ownable(msg.sender) {
        priceNoticePeriod = priceNoticePeriod_;
    }

    // ------------------------------------------------------------------ external: uploaders

    /// @notice Registers a model whose version 1 is the file with sha-256 `artifactDigest`.
    /// @param name A human-readable name; not unique.
    /// @param artifactDigest sha-256 of the ONNX file (its CIDv1 names the same bytes).
    /// @param metadataURI Where the model card lives.
    /// @param pricePerCall Fee per call in token base units; 0 makes a free model.
    /// @return modelId The new model's id (ids start at 1).
    function registerModel(string calldata name, bytes32 artifactDigest, string calldata metadataURI, uint256 pricePerCall)
        external
        whenNotPaused
        returns (uint256 modelId)
    {
        if (bytes(name).length == 0) revert ModelRegistry_EmptyName();
        if (artifactDigest == bytes32(0)) revert ModelRegistry_ZeroDigest();
        _checkPrice(pricePerCall);

        modelId = ++modelCount;
        Model storage model = _models[modelId];
        model.pricePerCall = uint128(pricePerCall);
        model.latestVersion = 1;
        model.active = true;
        model.owner = msg.sender;
        model.name = name;
        model.metadataURI = metadataURI;
        _versions[modelId][1] = Version(artifactDigest, uint64(block.timestamp));

        emit ModelRegistered(modelId, msg.sender, name, artifactDigest, pricePerCall, metadataURI);
    }

    /// @notice Publishes a new file for the model; it becomes the latest version.
    /// @return version The new version number.
    function publishVersion(uint256 modelId, bytes32 artifactDigest, string calldata metadataURI)
        external
        onlyModelOwner(modelId)
        returns (uint32 version)
    {
        if (artifactDigest == bytes32(0)) revert ModelRegistry_ZeroDigest();
        Model storage model = _models[modelId];
        version = model.latestVersion + 1;
        model.latestVersion = version;
        model.metadataURI = metadataURI;
        _versions[modelId][version] = Version(artifactDigest, uint64(block.timestamp));
        emit VersionPublished(modelId, version, artifactDigest, metadataURI);
    }

    /// @notice Sets the price of future calls; calls already paid keep the price they locked.
    /// A rise applies to on-chain requests at once and to signed receipts after
    /// `priceNoticePeriod`, counted from the last rise; a cut applies to both at once.
    function setPrice(uint256 modelId, uint256 pricePerCall) external onlyModelOwner(modelId) {
        _checkPrice(pricePerCall);
        Model storage model = _models[modelId];
        uint256 oldPrice = model.pricePerCall;
        // The receipt price in force now is the one a rise must not cut short: a second rise
        // within the notice keeps the first one's floor and restarts the clock.
        PriceNotice storage notice = _notices[modelId];
        uint256 floor = _receiptPrice(model, notice);
        uint256 lowest = _lowestPrice(model, notice);
        model.pricePerCall = uint128(pricePerCall);
        emit PriceChanged(modelId, oldPrice, pricePerCall);
        if (pricePerCall > floor) {
            uint64 endsAt = uint64(block.timestamp + priceNoticePeriod);
            // floor <= the old price, which fits in 128 bits; uint40 seconds last until the year 36812.
            notice.receiptPrice = uint128(floor);
            notice.endsAt = uint40(endsAt);
            emit PriceNoticeStarted(modelId, floor, endsAt);
        }
        // A cut leaves the last notice's record in place: the lower of its floor and the price
        // is what receipts pay while it runs, and the escrow still reads it after it ended.
        notice.lowestPlusOne = uint136((pricePerCall < lowest ? pricePerCall : lowest) + 1);
    }

    /// @notice Sets who shares the model's revenue: 1 to 8 distinct accounts, non-zero shares
    /// summing to 10_000. Explicit payees stay when the model is transferred. The first explicit
    /// payees replace the default (the owner alone) at once; a later change applies
    /// `priceNoticePeriod` from now, so that calls already paid for settle to the payees they
    /// were paid under (a second change within the notice replaces the pending one).
    function setPayees(uint256 modelId, address[] calldata accounts, uint16[] calldata shares)
        external
        onlyModelOwner(modelId)
    {
        uint256 count = accounts.length;
        if (count == 0 || count > MAX_PAYEES) revert ModelRegistry_PayeeCount(count, MAX_PAYEES);
        if (shares.length != count) revert ModelRegistry_LengthMismatch(count, shares.length);

        Model storage model = _models[modelId];
        _applyDuePayees(model);
        // Only the owner is paid under the default payees, and the owner is the one changing them.
        bool atOnce = model.payeeCount == 0;
        uint8 bank = atOnce ? model.payeeBank : 1 - model.payeeBank;

        // Starts at zero, as every local does.
        // slither-disable-next-line uninitialized-local
        uint256 total;
        Payee[MAX_PAYEES] storage payees = _payees[modelId][bank];
        for (uint256 i; i < count; ++i) {
            address account = accounts[i];
            if (account == address(0)) revert ModelRegistry_ZeroAddress();
            if (shares[i] == 0) revert ModelRegistry_ZeroShare(account);
            // At most 8 payees, so the quadratic duplicate check is bounded (28 comparisons).
            for (uint256 j; j < i; ++j) {
                if (accounts[j] == account) revert ModelRegistry_DuplicatePayee(account);
            }
            total += shares[i];
            payees[i] = Payee(account, shares[i]);
        }
        if (total != TOTAL_SHARES) revert ModelRegistry_SharesTotal(total, TOTAL_SHARES);
        // Entries past `count` from an earlier, longer list are stale but never read.
        uint64 effectiveAt = uint64(block.timestamp);
        if (atOnce) {
            model.payeeCount = uint8(count);
        } else {
            effectiveAt += priceNoticePeriod;
            model.nextPayeeCount = uint8(count);
            // uint40 seconds last until the year 36812.
            model.nextPayeesAt = uint40(effectiveAt);
        }
        emit PayeesChanged(modelId, accounts, shares);
        emit PayeesEffectiveAt(modelId, effectiveAt);
    }

    /// @notice Switches the model on or off; an inactive model accepts no new calls.
    function setActive(uint256 modelId, bool active) external onlyModelOwner(modelId) {
        _models[modelId].active = active;
        emit ModelActiveChanged(modelId, active);
    }

    /// @notice Hands the model to `newOwner`. Default payees follow the owner; explicit ones stay.
    function transferModel(uint256 modelId, address newOwner) external onlyModelOwner(modelId) {
        if (newOwner == address(0)) revert ModelRegistry_ZeroAddress();
        _models[modelId].owner = newOwner;
        emit ModelTransferred(modelId, msg.sender, newOwner);
    }

    // ------------------------------------------------------------------ external: contract owner

    /// @notice Stops new model registrations; everything else keeps working.
    function pause() external onlyOwner {
        _pause();
    }

    /// @notice Lets new model registrations in again.
    function unpause() external onlyOwner {
        _unpause();
    }

    // ------------------------------------------------------------------ external: views

    /// @notice A model's owner, price, latest version, active flag, name and latest model card.
    function getModel(uint256 modelId)
        external
        view
        returns (
            address owner,
            uint256 pricePerCall,
            uint32 latestVersion,
            bool active,
            string memory name,
            string memory metadataURI
        )
    {
        Model storage model = _existing(modelId);
        return (model.owner, model.pricePerCall, model.latestVersion, model.active, model.name, model.metadataURI);
    }

    /// @notice The file digest of one version and when it was published.
    function getVersion(uint256 modelId, uint32 version) external view returns (bytes32 artifactDigest, uint64 publishedAt) {
        Version storage v = _versions[modelId][version];
        if (v.artifactDigest == bytes32(0)) {
            _existing(modelId);
            revert ModelRegistry_UnknownVersion(modelId, version);
        }
        return (v.artifactDigest, v.publishedAt);
    }

    /// @inheritdoc IModelRegistry
    function getPayees(uint256 modelId) public view returns (address[] memory accounts, uint16[] memory shares) {
        Model storage model = _existing(modelId);
        (uint256 bank, uint256 count) = _payeesInForce(model);
        return _readPayees(modelId, model, bank, count);
    }

    /// @notice The payees a pending change will put in force at `effectiveAt` (empty, 0 when none).
    function pendingPayees(uint256 modelId)
        external
        view
        returns (address[] memory accounts, uint16[] memory shares, uint64 effectiveAt)
    {
        Model storage model = _existing(modelId);
        effectiveAt = model.nextPayeesAt;
        if (effectiveAt == 0 || block.timestamp >= effectiveAt) return (accounts, shares, 0);
        (accounts, shares) = _readPayees(modelId, model, 1 - model.payeeBank, model.nextPayeeCount);
    }

    /// @inheritdoc IModelRegistry
    function callTerms(uint256 modelId) external view returns (uint256 pricePerCall, uint32 latestVersion, bool active) {
        Model storage model = _models[modelId];
        latestVersion = model.latestVersion;
        // Every registered model has version 1, so a zero here means the id is unknown.
        if (latestVersion == 0) revert ModelRegistry_UnknownModel(modelId);
        return (model.pricePerCall, latestVersion, model.active);
    }

    /// @inheritdoc IModelRegistry
    function receiptTerms(uint256 modelId)
        external
        view
        returns (
            bool exists,
            uint256 pricePerCall,
            uint256 floorPrice,
            uint64 floorEndsAt,
            address[] memory payees,
            uint16[] memory shares
        )
    {
        Model storage model = _models[modelId];
        if (model.latestVersion == 0) return (false, 0, 0, 0, payees, shares);
        (payees, shares) = getPayees(modelId);
        PriceNotice storage notice = _notices[modelId];
        return (true, model.pricePerCall, _lowestPrice(model, notice), notice.endsAt, payees, shares);
    }

    /// @notice The notice on a model's last price rise: receipts paying `receiptPrice` per call
    /// settle until `endsAt` (both zero when no rise is under notice).
    function priceNotice(uint256 modelId) external view returns (uint256 receiptPrice, uint64 endsAt) {
        _existing(modelId);
        PriceNotice storage notice = _notices[modelId];
        if (block.timestamp >= notice.endsAt || notice.receiptPrice >= _models[modelId].pricePerCall) return (0, 0);
        return (notice.receiptPrice, notice.endsAt);
    }

    // ------------------------------------------------------------------ internal

    /// @dev The least a receipt must pay per call now: the price, or during a rise's notice the
    /// price before it.
    function _receiptPrice(Model storage model, PriceNotice storage notice) private view returns (uint256) {
        uint256 price = model.pricePerCall;
        if (block.timestamp < notice.endsAt && notice.receiptPrice < price) return notice.receiptPrice;
        return price;
    }

    /// @dev The lowest receipt price the model ever had (never above the price).
    function _lowestPrice(Model storage model, PriceNotice storage notice) private view returns (uint256) {
        uint256 lowestPlusOne = notice.lowestPlusOne;
        if (lowestPlusOne == 0) return model.pricePerCall;
        return lowestPlusOne - 1;
    }

    /// @dev Which bank holds the payees in force now, and how many (0: the default payee).
    function _payeesInForce(Model storage model) private view returns (uint256 bank, uint256 count) {
        uint256 nextAt = model.nextPayeesAt;
        if (nextAt != 0 && block.timestamp >= nextAt) return (1 - model.payeeBank, model.nextPayeeCount);
        return (model.payeeBank, model.payeeCount);
    }

    /// @dev Makes a pending payee change whose time has come the one in force.
    function _applyDuePayees(Model storage model) private {
        uint256 nextAt = model.nextPayeesAt;
        if (nextAt == 0 || block.timestamp < nextAt) return;
        model.payeeBank = 1 - model.payeeBank;
        model.payeeCount = model.nextPayeeCount;
        model.nextPayeeCount = 0;
        model.nextPayeesAt = 0;
    }

    function _readPayees(uint256 modelId, Model storage model, uint256 bank, uint256 count)
        private
        view
        returns (address[] memory accounts, uint16[] memory shares)
    {
        if (count == 0) {
            accounts = new address[](1);
            shares = new uint16[](1);
            accounts[0] = model.owner;
            shares[0] = TOTAL_SHARES;
            return (accounts, shares);
        }
        accounts = new address[](count);
        shares = new uint16[](count);
        Payee[MAX_PAYEES] storage payees = _payees[modelId][bank];
        for (uint256 i; i < count; ++i) {
            accounts[i] = payees[i].account;
            shares[i] = payees[i].share;
        }
    }

    function _existing(uint256 modelId) private view returns (Model storage model) {
        model = _models[modelId];
        if (model.latestVersion == 0) revert ModelRegistry_UnknownModel(modelId);
    }

    function _checkPrice(uint256 pricePerCall) private pure {
        if (pricePerCall > MAX_PRICE) revert ModelRegistry_PriceTooHigh(pricePerCall, MAX_PRICE);
    }
}
